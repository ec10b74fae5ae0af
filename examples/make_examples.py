"""Regenerate the bundled example clips and examples/examples.json (run from the repository root):

    python examples/make_examples.py

Deterministic: the astronaut photograph from scikit-image, a virtual camera and espeak-ng speech
(see preprocessing/synthetic.py). Needs the dev requirements (scikit-image) and espeak-ng. The two clips
film the same photograph, so each gets its own framing (``shot``): the positive one a wide shot, the negative
one a mirrored close-up, and their thumbnails do not look like one example twice.
"""

from __future__ import annotations

import json
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from preprocessing.synthetic import make_face_clip, reencode_video

HERE = Path(__file__).resolve().parent

EXAMPLES = [
    dict(file="positive.mp4", motion="sway", mouth="talk", seed=1, shot="wide",
         text="I really loved this movie. The acting was wonderful and I would happily watch it again."),
    dict(file="negative.mp4", motion="still", mouth="talk", seed=2, shot="mirrored close-up",
         text="Honestly this film was terrible. The story was boring and I regret watching it."),
]
SETTINGS = dict(duration_s=6.0, fps=15, size=(480, 270), audio="speech")
CLOSE_UP = 1.45          # how much closer the close-up is than the wide shot


def framed(frame: av.VideoFrame, shot: str) -> av.VideoFrame:
    """The wide shot as filmed; the close-up: the centre 1/CLOSE_UP of the frame, enlarged back and mirrored."""
    if shot == "wide":
        return frame
    rgb = frame.to_ndarray(format="rgb24")
    h, w = rgb.shape[:2]
    ch, cw = round(h / CLOSE_UP), round(w / CLOSE_UP)
    top, left = (h - ch) // 2, (w - cw) // 2
    close = cv2.resize(rgb[top:top + ch, left:left + cw], (w, h), interpolation=cv2.INTER_CUBIC)[:, ::-1]
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(close), format="rgb24")


def compress(src: Path, dst: Path, shot: str, crf: int = 30) -> None:
    """Re-encode the video in its framing with a slower x264 preset (make_face_clip favours speed; the repo wants
    small files); the audio packets are copied unchanged. Each frame is stamped with its index at the stream's
    rate: a frame without a timestamp would be muxed at pts 0 and the clip read as a single frame."""
    fps = SETTINGS["fps"]
    reencode_video(src, dst, stamp=lambda i: i, rate=fps, time_base=Fraction(1, fps),
                   codec_options={"preset": "veryslow", "crf": str(crf)}, transform=lambda frame: framed(frame, shot))


def main() -> None:
    for ex in EXAMPLES:
        with tempfile.TemporaryDirectory() as tmp:
            raw = make_face_clip(Path(tmp) / ex["file"], text=ex["text"], motion=ex["motion"], mouth=ex["mouth"],
                                 seed=ex["seed"], **SETTINGS)
            compress(raw, HERE / ex["file"], ex["shot"])
        print(f"{ex['file']}: {(HERE / ex['file']).stat().st_size / 1e3:.0f} KB")
    (HERE / "examples.json").write_text(json.dumps([[ex["file"], ex["text"]] for ex in EXAMPLES], indent=2) + "\n")


if __name__ == "__main__":
    main()
