"""Malformed requests for the app, each with the message it must get: files are generated, not stored.

    python tests/malformed_corpus.py OUT_DIR      # write the corpus files and list the cases

``cases(folder, good_clip)`` writes every file into ``folder`` and returns the cases; each sends
``(video, transcript, fps, window, weights)`` to ``/predict`` and expects an error matching
``expect``. ``GOOD_TRANSCRIPT`` on ``good_clip`` is the request that must still work afterwards.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from preprocessing.synthetic import AUDIO_RATE, _write_audio, make_face_clip, make_plain_clip, voice_tone

GOOD_TRANSCRIPT = "I really enjoyed this movie, it was great."
MARKUP = "<img src=x onerror=alert(1)><b id=x>w</b>"
NOT_A_SOURCE = "is not a weights source this server accepts"


@dataclass
class Case:
    name: str
    expect: str                        # regex the error message must match
    video: Path | None = None          # None: the good clip
    transcript: str = GOOD_TRANSCRIPT
    fps: object = None
    window: object = 0
    weights: object = ""

    def inputs(self, good_clip: Path) -> dict:
        """Keyword arguments of ``/predict`` (an fps of None is left to the endpoint's default)."""
        sent = dict(video=self.video or good_clip, transcript=self.transcript, fps=self.fps, window=self.window,
                    weights=self.weights)
        return {k: v for k, v in sent.items() if v is not None}


def audio_only(path: Path, duration_s: float = 2.0) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=AUDIO_RATE)
        stream.layout = "mono"
        _write_audio(out, stream, voice_tone(duration_s, 160.0, AUDIO_RATE))
    return path


def frame_flood(path: Path, duration_s: float = 4.0, side: int = 352) -> Path:
    """A frame flood: ``duration_s`` of video with a frame every millisecond (1000 fps, stamps and header agree),
    a flat picture so the file stays small (4 s: ~150 KB), and a sound track as long as the video."""
    flat = np.full((side, side, 3), 120, np.uint8)
    frame = av.VideoFrame.from_ndarray(flat, format="rgb24").reformat(format="yuv420p")
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=1000)
        video.width = video.height = side
        video.pix_fmt, video.options = "yuv420p", {"preset": "ultrafast"}
        video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        audio = out.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"
        for ms in range(round(duration_s * 1000)):
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        _write_audio(out, audio, voice_tone(duration_s, 160.0, AUDIO_RATE))
    return path


def files(folder: Path, good_clip: Path) -> dict[str, Path]:
    """Every malformed file, written into ``folder``: name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    good = good_clip.read_bytes()
    raw = {
        "empty.mp4": b"",
        "corrupt.mp4": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        "truncated.mp4": good[: len(good) // 3],
        "image.mp4": cv2.imencode(".png", np.full((64, 64, 3), 200, np.uint8))[1].tobytes(),
        "notes.txt": b"I really enjoyed this movie.",
    }
    out = {}
    for name, data in raw.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    out["tiny.mp4"] = make_plain_clip(folder / "tiny.mp4", 1.0, fps=10, size=(1, 1), video_codec="mpeg4")
    out["voice.m4a.mp4"] = audio_only(folder / "voice.m4a.mp4")
    out["hum.mp4"] = make_face_clip(folder / "hum.mp4", 2.0, fps=10, size=(160, 90), audio="tone")
    out["wall.mp4"] = make_face_clip(folder / "wall.mp4", 1.0, fps=10, size=(160, 90), face=False, audio="tone")
    out["long.mp4"] = make_plain_clip(folder / "long.mp4", 62.0, fps=2, size=(64, 64))
    out["flood.mp4"] = frame_flood(folder / "flood.mp4")
    return out


def cases(folder: Path, good_clip: Path) -> list[Case]:
    f = files(folder, good_clip)
    return [
        Case("empty file", r"'empty\.mp4' is empty", f["empty.mp4"]),
        Case("random bytes", r"Could not read 'corrupt\.mp4'", f["corrupt.mp4"]),
        Case("truncated mp4", r"Could not read 'truncated\.mp4'|'truncated\.mp4' is empty", f["truncated.mp4"]),
        Case("PNG renamed .mp4", r"'image\.mp4' is an image, not a video", f["image.mp4"]),
        Case("text file", r"unsupported format", f["notes.txt"]),
        Case("1x1-pixel video", r"'tiny\.mp4' is only 1x1 pixels", f["tiny.mp4"]),
        Case("audio only", r"has no picture", f["voice.m4a.mp4"]),
        Case("no face", r"No face was found", f["wall.mp4"]),
        Case("longer than 60 s", r"'long\.mp4' is 6\d\.\d s long; the limit is 60 s", f["long.mp4"]),
        Case("frame flood: 1000 frames a second", r"'flood\.mp4' holds more than [\d,]+ video frames in 4\.\d s: "
             r"over 240 frames per second", f["flood.mp4"]),
        Case("empty transcript, no speech", r"No speech was found in the clip", f["hum.mp4"], transcript="   "),
        Case("transcript too long", r"has 3000 characters; the limit is 2000", transcript="a" * 3000),
        Case("lone surrogate in the transcript", r"transcript contains characters that are not text",
             transcript="great \ud83d movie"),
        Case("fps 'abc'", r"Frames per second must be a number between 1 and 25; got 'abc'", fps="abc"),
        Case("fps NaN", r"Frames per second must be a number between 1 and 25; got nan", fps=float("nan")),
        Case("fps inf", r"Frames per second must be a number between 1 and 25; got inf", fps=float("inf")),
        Case("fps 0", r"Frames per second must be a number between 1 and 25; got 0", fps=0),
        Case("fps 1000", r"Frames per second must be a number between 1 and 25; got 1000", fps=1000),
        Case("window 'abc'", r"timeline window must be 0 \(off\) or a number of seconds", window="abc"),
        Case("window NaN", r"timeline window must be 0 \(off\) or a number of seconds", window=float("nan")),
        Case("window negative", r"timeline window must be 0 \(off\) or at least 1 s; got -1", window=-1),
        Case("window 0.01 s", r"timeline window must be 0 \(off\) or at least 1 s; got 0\.01", window=0.01),
        Case("weights with markup", rf"'&lt;img src=x onerror=alert\(1\)&gt;&lt;b id=x&gt;w&lt;/b&gt;' {NOT_A_SOURCE}",
             weights=MARKUP),
        Case("weights: system directory", rf"'/etc' {NOT_A_SOURCE}", weights="/etc"),
        Case("weights: system file", rf"'/etc/passwd' {NOT_A_SOURCE}", weights="/etc/passwd"),
        Case("weights: missing path", rf"'/no/such/dir' {NOT_A_SOURCE}", weights="/no/such/dir"),
        Case("weights: parent directory", rf"'\.\./checkpoints' {NOT_A_SOURCE}", weights="../checkpoints"),
        Case("weights: home", rf"'~' {NOT_A_SOURCE}", weights="~"),
    ]


if __name__ == "__main__":
    out = Path(sys.argv[1])
    good = make_face_clip(out / "good.mp4", 2.0, fps=10, size=(320, 180))
    for case in cases(out, good):
        print(f"{case.name:34s} -> {case.expect}")
