"""Soak: the app under mixed good and bad requests from several clients; do its memory, threads and disk stay flat?

    python benchmarks/bench_soak.py [--minutes 30] [--clients 4]

Starts `python app.py` (the bundled default weights) on a free loopback port, with GRADIO_TEMP_DIR (visitors'
uploads and outputs) and HF_HOME (the Hub cache) set to fresh folders so that the disk they take can be measured.
Each good request is answered once first: its score is the reference. Then for --minutes, --clients threads
(each its own gradio_client, as the tests send requests) loop over a shuffled mix of
  good: the bundled examples (examples/) with their transcripts, and a generated face clip with
        tests/malformed_corpus.GOOD_TRANSCRIPT;
  bad:  every case of tests/malformed_corpus.py (values gradio_client cannot encode, NaN or lone surrogates, go
        over plain HTTP as a browser would send them), and junk weights repo ids (a new one each time);
  probes: the attacks of issue #37 (benchmarks/soak_probes.py): closed routes, a URL as a file, an image bomb
        as a webcam frame, a token flood, other spellings of the install's weights folder, escape codes,
        unreadable payloads (all must be refused), and dollar signs with a timeline and a 1,980-character word
        (both must be scored).
At the start (after the reference answers), once a minute and at the end it reads the server's RSS, peak RSS,
threads and open files (/proc/PID) and the disk used under GRADIO_TEMP_DIR, HF_HOME and the visitors' weights
cache. A good request counts as answered if it got a score, and as the same if that score equals its reference;
a bad one as refused if it got an error message (tests/test_hardening.py checks the messages themselves). Prints
one table and writes benchmarks/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from bench_inference import free_port
from common import ROOT, machine_info, machine_line, print_table, write_json
from soak_probes import Probes

sys.path.insert(0, str(ROOT / "tests"))   # malformed_corpus: the bad requests and the good transcript

from malformed_corpus import GOOD_TRANSCRIPT, cases  # noqa: E402  (after the sys.path insert)

START_TIMEOUT_S = 300      # app.py warms up (one analysis) before it serves
REQUEST_TIMEOUT_S = 300
SAMPLE_EVERY_S = 60        # the server's resources are also read once a minute during the soak


def start_app(env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free loopback port; (process, URL) once it answers."""
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"app.py did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)


def disk_mib(folder: Path) -> float:
    """Bytes of the files under ``folder`` (0 if it does not exist), MiB."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:    # deleted while walking (the server cleans up)
                pass
    return total / 2**20


def snapshot(pid: int, folders: dict[str, Path]) -> dict:
    """The server's resources now: RSS and peak RSS (MiB), threads, open files, and MiB on disk per folder."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return dict(rss_mib=int(status["VmRSS"].split()[0]) // 1024, peak_rss_mib=int(status["VmHWM"].split()[0]) // 1024,
                threads=int(status["Threads"]), open_files=len(os.listdir(f"/proc/{pid}/fd")),
                **{f"{name}_mib": disk_mib(path) for name, path in folders.items()})


def sample_every(pid: int, folders: dict[str, Path], every_s: float, samples: list, done: threading.Event) -> None:
    """Append (minutes since the start, snapshot) every ``every_s`` until ``done``: does RSS level off or climb?"""
    began = time.monotonic()
    while not done.wait(every_s):
        samples.append(((time.monotonic() - began) / 60, snapshot(pid, folders)))


def good_requests(tmp: Path) -> list[tuple[str, dict]]:
    """(name, /predict inputs) of each good request: the bundled examples and a generated face clip."""
    from preprocessing.synthetic import make_face_clip
    examples = json.loads((ROOT / "examples" / "examples.json").read_text())
    good = [(f"example {f}", dict(video=ROOT / "examples" / f, transcript=text, window=0)) for f, text in examples]
    clip = make_face_clip(tmp / "good.mp4", 2.0, fps=10, size=(320, 180))
    return good + [("generated face clip", dict(video=clip, transcript=GOOD_TRANSCRIPT, window=0))]


def sendable(value) -> bool:
    """Whether gradio_client can put ``value`` in JSON (it refuses NaN, infinity and lone surrogates)."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
        return True
    except (ValueError, UnicodeEncodeError):
        return False


def send(client, url: str, inputs: dict) -> tuple[bool, object]:
    """One /predict request: (True, score) when answered, (False, message) when refused."""
    import httpx
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    if all(sendable(v) for k, v in inputs.items() if k != "video"):
        try:
            return True, client.predict(**{**inputs, "video": handle_file(str(inputs["video"]))},
                                        api_name="/predict")["score"]
        except AppError as err:
            return False, str(err)
    # over plain HTTP, as a browser may send them: NaN as NaN, a lone surrogate as \ud83d
    with open(inputs["video"], "rb") as f:
        path = httpx.post(f"{url}gradio_api/upload", files={"files": (Path(inputs["video"]).name, f)}).json()[0]
    data = [{"path": path, "meta": {"_type": "gradio.FileData"}}, inputs["transcript"], inputs.get("fps"),
            inputs["window"], inputs["weights"]]
    event = httpx.post(f"{url}gradio_api/call/predict", content=json.dumps({"data": data}),
                       headers={"content-type": "application/json"}).json()["event_id"]
    reply = httpx.get(f"{url}gradio_api/call/predict/{event}", timeout=REQUEST_TIMEOUT_S).text
    if "event: error" in reply:
        return False, reply.split("event: error\ndata:", 1)[1].strip()
    return True, json.loads(reply.split("event: complete\ndata:", 1)[1].strip())[0]["score"]


def soak(url: str, good: list[tuple[str, dict]], bad: list[tuple[str, dict]], probes: Probes, reference: dict,
         seconds: float, clients: int, seed: int) -> tuple[Counter, Counter]:
    """``clients`` threads send shuffled good and bad requests until ``seconds`` have passed: (tallies per kind,
    the requests that went wrong: unanswered, a good one refused or scored differently, a bad one answered)."""
    from gradio_client import Client
    tally, wrong, lock, junk = Counter(), Counter(), threading.Lock(), iter(range(10**9))
    clip = good[-1][1]["video"]
    end = time.monotonic() + seconds

    def client_loop(k: int) -> None:
        rng = random.Random(seed + k)
        client = Client(url, verbose=False)
        while True:
            mix = [("good", *g) for g in good] + [("bad", *b) for b in bad]
            mix += [("junk weights", "(a new repo id)", None)] * 2
            mix += [("probe", *p) for p in probes.refused().items()]
            mix += [("probe scored", *p) for p in probes.answered().items()]
            rng.shuffle(mix)
            for kind, name, inputs in mix:
                if time.monotonic() >= end:
                    return
                if kind == "junk weights":     # a new id each time: nothing cached can answer it
                    with lock:
                        inputs = dict(video=clip, transcript=GOOD_TRANSCRIPT, window=0,
                                      weights=f"soak-junk-user/no-such-model-{next(junk)}")
                try:
                    answered, value = inputs(url) if kind.startswith("probe") else send(client, url, inputs)
                except Exception as err:   # no answer at all (connection refused, timeout): the server failed
                    answered, value = None, f"{type(err).__name__}: {err}"
                same = answered is True and value == reference.get(name)
                with lock:
                    tally[f"{kind} sent"] += 1
                    tally["no answer"] += answered is None
                    if kind == "good":
                        tally["good answered"] += answered is True
                        tally["good same score"] += same
                    elif kind == "probe scored":
                        tally["probe scored answered"] += answered is True
                    else:
                        tally["bad refused" if kind != "probe" else "probe refused"] += answered is False
                    expected = {"good": same, "probe scored": answered is True}.get(kind, answered is False)
                    if not expected:
                        wrong[f"{kind} {name}: {str(value)[:200]}"] += 1

    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, wrong


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from gradio_client import Client
    from preprocessing.encoders import cache_dir

    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folders = dict(gradio_temp=tmp / "gradio", hub_cache=tmp / "hf_home",
                       visitor_weights=cache_dir() / "visitor-weights")
        env = {k: v for k, v in os.environ.items() if k != "MCLMCF_WEIGHTS"}
        env |= dict(GRADIO_TEMP_DIR=str(folders["gradio_temp"]), HF_HOME=str(folders["hub_cache"]),
                    PYTHONUNBUFFERED="1")
        good = good_requests(tmp)
        clip = good[-1][1]["video"]
        bad = [(case.name, case.inputs(clip)) for case in cases(tmp / "corpus", clip)]
        proc, url = start_app(env, tmp / "app.log")
        try:
            client = Client(url, verbose=False)
            reference = {}
            for name, inputs in good:
                answered, reference[name] = send(client, url, inputs)
                if not answered:
                    raise RuntimeError(f"the good request {name!r} was refused before the soak: {reference[name]}")
            start = snapshot(proc.pid, folders)
            began = time.monotonic()
            samples, done = [], threading.Event()
            sampler = threading.Thread(target=sample_every, args=(proc.pid, folders, SAMPLE_EVERY_S, samples, done))
            sampler.start()
            tally, wrong = soak(url, good, bad, Probes(tmp, clip), reference, args.minutes * 60, args.clients,
                                args.seed)
            done.set()
            sampler.join()
            elapsed = time.monotonic() - began
            end = snapshot(proc.pid, folders)
            alive = proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    good_sent, bad_sent = tally["good sent"], tally["bad sent"] + tally["junk weights sent"]
    shares = dict(good_answered=tally["good answered"] / max(good_sent, 1),
                  good_same_score=tally["good same score"] / max(good_sent, 1),
                  bad_refused=tally["bad refused"] / max(bad_sent, 1),
                  probes_refused=tally["probe refused"] / max(tally["probe sent"], 1),
                  probes_scored=tally["probe scored answered"] / max(tally["probe scored sent"], 1))
    sent = good_sent + bad_sent + tally["probe sent"] + tally["probe scored sent"]
    print(f"\nsoak: {elapsed / 60:.1f} min, {args.clients} clients, {sent} requests ({good_sent} good, "
          f"{tally['bad sent']} corpus, {tally['junk weights sent']} junk weights, {tally['probe sent']} attack probes, "
          f"{tally['probe scored sent']} valid attack-shaped requests, {tally['no answer']} unanswered); "
          f"server alive at the end: {alive}; {machine_line(info)}")
    rows = [[name, start[name], end[name], end[name] - start[name]] for name in start]
    rows += [[f"share: {k.replace('_', ' ')}", None, v, None] for k, v in shares.items()]
    table = print_table(["", "start", "end", "change"], rows)
    print("RSS during the soak (minute: MiB):", ", ".join(f"{m:.0f}: {snap['rss_mib']}" for m, snap in samples[4::5]))
    for what, count in wrong.most_common(10):
        print(f"  went wrong {count}x: {what}")
    write_json("soak", dict(machine=info, minutes=args.minutes, clients=args.clients, seconds=elapsed,
                            server_alive=alive, reference_scores=reference, tally=tally, shares=shares, start=start,
                            end=end, samples=samples, went_wrong=wrong, table=table))


if __name__ == "__main__":
    main()
