"""Regenerate the bundled example clips and examples/examples.json (run from the repository root):

    python examples/make_examples.py

Deterministic: the astronaut photograph from scikit-image, a virtual camera and espeak-ng speech
(see preprocessing/synthetic.py). Needs the dev requirements (scikit-image) and espeak-ng.
"""

from __future__ import annotations

import json
import tempfile
from fractions import Fraction
from pathlib import Path

from preprocessing.synthetic import make_face_clip, reencode_video

HERE = Path(__file__).resolve().parent

EXAMPLES = [
    dict(file="positive.mp4", motion="sway", mouth="talk", seed=1,
         text="I really loved this movie. The acting was wonderful and I would happily watch it again."),
    dict(file="negative.mp4", motion="still", mouth="talk", seed=2,
         text="Honestly this film was terrible. The story was boring and I regret watching it."),
]
SETTINGS = dict(duration_s=6.0, fps=15, size=(480, 270), audio="speech")


def compress(src: Path, dst: Path, crf: int = 30) -> None:
    """Re-encode the video with a slower x264 preset (make_face_clip favours speed; the repo wants small
    files); the audio packets are copied unchanged. Each frame is stamped with its index at the stream's
    rate: a frame without a timestamp would be muxed at pts 0 and the clip read as a single frame."""
    fps = SETTINGS["fps"]
    reencode_video(src, dst, stamp=lambda i: i, rate=fps, time_base=Fraction(1, fps),
                   codec_options={"preset": "veryslow", "crf": str(crf)})


def main() -> None:
    for ex in EXAMPLES:
        with tempfile.TemporaryDirectory() as tmp:
            raw = make_face_clip(Path(tmp) / ex["file"], text=ex["text"], motion=ex["motion"], mouth=ex["mouth"],
                                 seed=ex["seed"], **SETTINGS)
            compress(raw, HERE / ex["file"])
        print(f"{ex['file']}: {(HERE / ex['file']).stat().st_size / 1e3:.0f} KB")
    (HERE / "examples.json").write_text(json.dumps([[ex["file"], ex["text"]] for ex in EXAMPLES], indent=2) + "\n")


if __name__ == "__main__":
    main()
