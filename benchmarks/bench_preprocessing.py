"""Preprocessing speed: seconds per stage for a 10 s, 25 fps, 640x360 clip, as a multiple of its duration.

    python benchmarks/bench_preprocessing.py [--runs 5] [--container .mp4]

The clip is generated (preprocessing.synthetic: astronaut face, swaying camera, talking mouth,
espeak-ng speech). "warm" = median over runs in one process (the app's steady state); "cold" = the
first call, which also builds the face-mesh graph and warms librosa's numba kernels.
Target: total <= 0.3x real time. Writes benchmarks/results/preprocessing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from preprocessing import FeatureSpec, extract_clip  # noqa: E402
from preprocessing.synthetic import make_face_clip  # noqa: E402

TARGET = 0.3
DURATION, FPS, SIZE = 10.0, 25, (640, 360)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--container", default=".mp4")
    args = ap.parse_args()
    spec = FeatureSpec()
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_face_clip(Path(tmp) / f"bench{args.container}", DURATION, fps=FPS, size=SIZE,
                              motion="sway", mouth="talk", audio="speech")
        cold = extract_clip(clip, spec)
        runs = [extract_clip(clip, spec).timings for _ in range(args.runs)]
    stages = ["decode", "audio", "visual", "total"]
    warm = {s: float(np.median([r[s] for r in runs])) for s in stages}
    rows = [(s, warm[s]) for s in stages] + [("total (cold, first call)", cold.timings["total"])]

    print(f"preprocessing: {DURATION:.0f} s clip, {FPS} fps, {SIZE[0]}x{SIZE[1]} {args.container}; "
          f"face mesh at {spec.video_fps:g} fps, audio hop {spec.hop_length} @ {spec.sample_rate} Hz; "
          f"{os.cpu_count()} CPU cores; median of {args.runs} warm runs")
    print(f"| {'stage':<26} | {'seconds':>7} | {'x real time':>11} | {'target':>7} |")
    print(f"|{'-' * 28}|{'-' * 9}|{'-' * 13}|{'-' * 9}|")
    for name, sec in rows:
        target = f"<= {TARGET}" if name.startswith("total") else ""
        print(f"| {name:<26} | {sec:7.3f} | {sec / DURATION:11.3f} | {target:>7} |")
    ok = warm["total"] / DURATION <= TARGET
    print(f"warm total {warm['total'] / DURATION:.3f}x real time: {'meets' if ok else 'MISSES'} the {TARGET}x target; "
          f"face found in {cold.face_fraction:.0%} of {len(cold.face_mask)} frames")

    out = Path(__file__).parent / "results" / "preprocessing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "clip": {"duration_s": DURATION, "fps": FPS, "size": SIZE, "container": args.container},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "feature_spec": spec.to_dict(), "runs": args.runs,
        "seconds_warm_median": warm, "x_real_time_warm": {s: warm[s] / DURATION for s in stages},
        "seconds_cold": cold.timings, "target_x_real_time": TARGET, "meets_target": ok,
        "face_fraction": cold.face_fraction,
    }, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
