"""Run every benchmark in one go: training step, scaling, inference, speech recognition, word attribution,
negations and contrasts, accuracy, live-mode latency (and preprocessing, first answer).

    python benchmarks/run_all.py [--quick] [--threads N] [--skip accuracy ...]

--quick is the CI smoke test: tiny models and clips; it checks that the scripts run and write their
JSON, not the times. Each script prints its own table and writes benchmarks/results/*.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = {"train": "bench_train.py", "scaling": "bench_scaling.py", "inference": "bench_inference.py",
           "asr": "bench_asr.py", "explain": "bench_explain.py",
           "negation": "bench_negation.py", "accuracy": "bench_accuracy.py", "live": "bench_live.py",
           "preprocessing": "bench_preprocessing.py", "first_answer": "bench_first_answer.py"}
THREADED = {"train", "scaling", "inference", "explain"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test (CI)")
    ap.add_argument("--threads", type=int, help="torch threads for the timing workers (1 is steadier when shared)")
    ap.add_argument("--skip", nargs="*", default=[], choices=sorted(SCRIPTS))
    args = ap.parse_args()
    skip = set(args.skip) | ({"preprocessing", "first_answer"} if args.quick else set())  # they have no quick mode
    elapsed = {}
    for name, script in SCRIPTS.items():
        if name in skip:
            continue
        cmd = [sys.executable, str(HERE / script)] + (["--quick"] if args.quick else [])
        if args.threads and name in THREADED:
            cmd += ["--threads", str(args.threads)]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        if subprocess.run(cmd).returncode != 0:
            print(f"{name} FAILED", file=sys.stderr)
            return 1
        elapsed[name] = time.perf_counter() - start
    print("\n" + ", ".join(f"{k} {v:.0f} s" for k, v in elapsed.items()) + f"; total {sum(elapsed.values()):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
