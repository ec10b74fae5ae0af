"""First answer after a fresh install: `python app.py` (bundled demo weights) to its first /predict answer.

    python benchmarks/bench_first_answer.py [--duration 10]

"Fresh" means: a new process whose numba cache (NUMBA_CACHE_DIR) and matplotlib cache (MPLCONFIGDIR)
are new empty directories, so librosa's numba kernels compile and matplotlib builds its font list as on
a machine that has just run `pip install -r requirements.txt`. The installed packages' .pyc files
(which pip writes at install) and the operating system's file cache are as they are. The app runs its
warm-up analysis (a bundled example) before it serves, so the time is launch -> warm-up -> server up
-> first answer. The same launch with the caches left warm by the first run is measured beside it.
Clip: preprocessing.synthetic.make_face_clip, 25 fps, 640x360 mp4. Writes benchmarks/results/first_answer.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_inference import app_cold_start
from common import machine_info, machine_line, print_table, write_json

GOAL_S = 20.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of the clip sent as the first request")
    args = ap.parse_args()
    from preprocessing.synthetic import make_face_clip

    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_face_clip(Path(tmp) / "clip.mp4", args.duration, fps=25, size=(640, 360), motion="sway",
                              mouth="talk", audio="speech")
        caches = dict(NUMBA_CACHE_DIR=str(Path(tmp) / "numba"), MPLCONFIGDIR=str(Path(tmp) / "matplotlib"))
        fresh = app_cold_start(None, clip, env=caches)              # the directories do not exist yet: empty
        warm = app_cold_start(None, clip, env=caches)               # the same caches, filled by the first launch
    rows = [["fresh install (empty numba + matplotlib caches)", fresh["server_up_s"], fresh["first_answer_s"]],
            ["caches filled by the launch above", warm["server_up_s"], warm["first_answer_s"]]]
    print(f"\npython app.py -> first /predict answer ({args.duration:g} s clip, bundled weights); {machine_line(info)}")
    table = print_table(["launch", "server up s", "first answer s"], rows)
    print(f"goal: first answer <= {GOAL_S:g} s after a fresh install: "
          f"{'met' if fresh['first_answer_s'] <= GOAL_S else 'NOT met'}")
    write_json("first_answer", dict(machine=info, clip_s=args.duration, goal_s=GOAL_S, fresh=fresh, warm=warm,
                                    table=table))


if __name__ == "__main__":
    main()
