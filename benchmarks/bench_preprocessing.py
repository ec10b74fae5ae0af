"""Preprocessing speed: seconds per stage for a 10 s, 25 fps, 640x360 clip, as a multiple of its duration.

    python benchmarks/bench_preprocessing.py [--runs 5] [--container .mp4]

The clip is generated (preprocessing.synthetic: astronaut face, swaying camera, talking mouth,
espeak-ng speech). "warm" = median over runs in one process (the app's steady state); "cold" = the
first call, which also builds the face-mesh graph and warms librosa's numba kernels.
Target: total <= 0.3x real time. Writes benchmarks/results/preprocessing.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from common import machine_info, machine_line, print_table, write_json  # also puts the repo on sys.path
from preprocessing import FeatureSpec, extract_clip
from preprocessing.synthetic import make_face_clip

TARGET = 0.3
DURATION, FPS, SIZE = 10.0, 25, (640, 360)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--container", default=".mp4")
    args = ap.parse_args()
    spec = FeatureSpec()
    info = machine_info()
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
          f"median of {args.runs} warm runs; {machine_line(info)}")
    table = print_table(["stage", "seconds", "x real time", "target"],
                        [[name, sec, sec / DURATION, f"<= {TARGET}" if name.startswith("total") else ""]
                         for name, sec in rows])
    ok = warm["total"] / DURATION <= TARGET
    print(f"warm total {warm['total'] / DURATION:.3f}x real time: {'meets' if ok else 'MISSES'} the {TARGET}x target; "
          f"face found in {cold.face_fraction:.0%} of {len(cold.face_mask)} frames")
    write_json("preprocessing", {
        "clip": {"duration_s": DURATION, "fps": FPS, "size": SIZE, "container": args.container},
        "machine": info, "feature_spec": spec.to_dict(), "runs": args.runs,
        "seconds_warm_median": warm, "x_real_time_warm": {s: warm[s] / DURATION for s in stages},
        "seconds_cold": cold.timings, "target_x_real_time": TARGET, "meets_target": ok,
        "face_fraction": cold.face_fraction, "table": table,
    })


if __name__ == "__main__":
    main()
