"""The attacks of issue #37 as soak requests: each probe speaks Gradio's HTTP protocol the way a client program
on the internet would, and returns (answered, value) as bench_soak.send does: answered is False when the server
refused it (a 404, or an error message from the queue), True when it did the work.

    REFUSED: probes the server must refuse (the soak counts them with the malformed corpus);
    ANSWERED: valid requests shaped like an attack (dollar signs, a very long word), which must still be scored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
from PIL import Image

from common import ROOT

TIMEOUT_S = 300


def upload(url: str, path: Path) -> dict:
    with open(path, "rb") as f:
        stored = httpx.post(f"{url}gradio_api/upload", files={"files": (path.name, f)}, timeout=TIMEOUT_S).json()[0]
    return {"path": stored, "meta": {"_type": "gradio.FileData"}}


def through_queue(url: str, api_name: str, data: list, session: str) -> tuple[bool, object]:
    """Join the queue as the page does; (True, output) when the event succeeded, else (False, its message)."""
    dependencies = httpx.get(f"{url}config", timeout=TIMEOUT_S).json()["dependencies"]
    index = next(i for i, d in enumerate(dependencies) if d.get("api_name") == api_name)
    httpx.post(f"{url}gradio_api/queue/join", timeout=TIMEOUT_S,
               json={"data": data, "event_data": None, "fn_index": index, "trigger_id": None, "session_hash": session})
    stream = httpx.get(f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=TIMEOUT_S).text
    messages = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith("data: ")]
    done = next(m for m in messages if m.get("msg") == "process_completed")
    return (True, done["output"]["data"]) if done["success"] else (False, done["output"].get("error"))


def status(response: httpx.Response) -> tuple[bool, object]:
    """A plain HTTP route: refused when it answers 4xx."""
    return response.status_code < 400, f"HTTP {response.status_code}"


class Probes:
    """The probes for one soak: the files they send are made once, in ``folder``."""

    def __init__(self, folder: Path, clip: Path):
        self.clip = clip
        self.bomb = folder / "frame.png"          # 46 KB on the wire, 13000 x 13000 pixels
        Image.new("1", (13000, 13000)).save(self.bomb, optimize=True)
        self.count = 0

    def session(self) -> str:
        self.count += 1
        return f"probe-{os.getpid()}-{self.count}"

    def predict(self, url: str, transcript: str, weights: str = "", window: float = 0) -> tuple[bool, object]:
        return through_queue(url, "predict", [upload(url, self.clip), transcript, 10, window, weights], self.session())

    def refused(self) -> dict:
        """name -> probe(url): what the server must refuse."""
        install = str(ROOT / "checkpoints")
        return {
            "direct POST /api/predict": lambda url: status(httpx.post(
                f"{url}gradio_api/api/predict", json={"data": [upload(url, self.clip), "I loved it", 10, 0, ""]},
                timeout=TIMEOUT_S)),
            "process_recording with a zoom": lambda url: status(httpx.post(
                f"{url}gradio_api/process_recording", files={"video": ("r.mp4", self.clip.read_bytes())},
                data={"zoom_effects": json.dumps([{"boundingBox": {"topLeft": [0, 0], "bottomRight": [1, 1]}}])},
                timeout=TIMEOUT_S)),
            "monitoring summary": lambda url: status(httpx.get(f"{url}monitoring/summary", timeout=TIMEOUT_S)),
            "file= a URL": lambda url: status(httpx.get(f"{url}gradio_api/file=http://127.0.0.1:9/x.mp4",
                                                        timeout=TIMEOUT_S)),
            "FileData naming a URL": lambda url: through_queue(
                url, "predict", [{"path": "http://127.0.0.1:9/x.mp4", "meta": {"_type": "gradio.FileData"}},
                                 "I loved it", 10, 0, ""], self.session()),
            "13000x13000 webcam frame": lambda url: through_queue(url, "on_frame", [upload(url, self.bomb)],
                                                                  self.session()),
            "2,000 x '{' transcript": lambda url: self.predict(url, "{" * 2000),
            "weights ./checkpoints": lambda url: self.predict(url, "I loved it", "./checkpoints"),
            "weights checkpoints/.": lambda url: self.predict(url, "I loved it", "checkpoints/."),
            "weights: the install's path": lambda url: self.predict(url, "I loved it", install),
            "weights with escape codes": lambda url: self.predict(url, "I loved it", "\x1b[2J\x1b[31mowner"),
            "a number where the clip goes": lambda url: through_queue(url, "predict", [12, "I loved it", 10, 0, ""],
                                                                      self.session()),
        }

    def answered(self) -> dict:
        """name -> probe(url): valid requests shaped like attacks, which must be scored."""
        return {
            "'$x^$' with a 1 s timeline": lambda url: self.predict(url, "I really $x^$ loved this movie", window=1),
            "a 1,980-character word": lambda url: self.predict(url, "I loved it " + "a" * 1980),
        }
