"""First answer after a fresh install: `python app.py` (bundled demo weights) to its first /predict answer.

    python benchmarks/bench_first_answer.py [--duration 10] [--reference REV]

"Fresh" means: a new process whose numba cache (NUMBA_CACHE_DIR) and matplotlib cache (MPLCONFIGDIR)
are new empty directories, so whatever compiles into them (librosa's numba kernels before #39) and
matplotlib's font list are built as on a machine that has just run `pip install -r requirements.txt`.
The installed packages' .pyc files (which pip writes at install) and the operating system's file cache
are as they are. The app runs its warm-up analysis (a bundled example) before it serves, so the time is
launch -> warm-up -> server up -> first answer. The same launch with the caches left warm by the first run
is measured beside it. Each launch also gives the longest stretch with no console line before the server
answered (goal: <= 5 s), the app's CPU seconds by its first answer (with the processes it started and
waited for; steadier than wall time when the CPUs are shared) and the 1-minute load average at its start.

--reference REV: the same launches of git revision REV (``git archive`` into a temporary folder, same
Python environment), alternated with this tree's so that both see the same machine load.
Clip: preprocessing.synthetic.make_face_clip, 25 fps, 640x360 mp4. Writes benchmarks/results/first_answer.json.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

from bench_inference import app_cold_start
from common import ROOT, machine_info, machine_line, print_table, write_json

GOAL_S = 20.0
SILENCE_GOAL_S = 5.0


def export_revision(rev: str, dest: Path) -> Path:
    """The files of git revision ``rev`` under ``dest`` (nothing in this repository changes)."""
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def launch(root: Path, clip: Path, caches: dict) -> dict:
    load = os.getloadavg()[0]
    return {**app_cold_start(None, clip, timeout=900, env=caches, root=root), "load_1min": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of the clip sent as the first request")
    ap.add_argument("--reference", help="git revision to launch beside this tree (e.g. a commit before a change)")
    args = ap.parse_args()
    from preprocessing.synthetic import make_face_clip

    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_face_clip(tmp / "clip.mp4", args.duration, fps=25, size=(640, 360), motion="sway",
                              mouth="talk", audio="speech")
        trees = {"this tree": ROOT}
        if args.reference:
            trees = {f"reference {args.reference}": export_revision(args.reference, tmp / "reference"), **trees}
        caches = {name: dict(NUMBA_CACHE_DIR=str(tmp / f"numba{i}"), MPLCONFIGDIR=str(tmp / f"matplotlib{i}"))
                  for i, name in enumerate(trees)}
        # the directories do not exist yet (empty); the second launch of a tree finds them filled by its first
        runs = {(name, kind): launch(root, clip, caches[name])
                for kind in ("fresh", "warm") for name, root in trees.items()}
    rows = [[name, "fresh install (empty caches)" if kind == "fresh" else "caches filled by its fresh launch",
             r["load_1min"], r["server_up_s"], r["first_answer_s"], r["cpu_s"], r["longest_silence_s"],
             r["silence_after"][:48]]
            for (name, kind), r in sorted(runs.items(), key=lambda item: (item[0][0] != "this tree", item[0]))]
    print(f"\npython app.py -> first /predict answer ({args.duration:g} s clip, bundled weights); {machine_line(info)}")
    table = print_table(["code", "launch", "load 1 min", "server up s", "first answer s", "app CPU s",
                         "longest silence s", "silent after"], rows)
    ours = runs[("this tree", "fresh")]
    print(f"goal: first answer <= {GOAL_S:g} s after a fresh install on an idle 2-core machine: "
          f"{ours['first_answer_s']:.1f} s at load {ours['load_1min']:.1f}; "
          f"console silent <= {SILENCE_GOAL_S:g} s: longest {ours['longest_silence_s']:.1f} s")
    write_json("first_answer", dict(machine=info, clip_s=args.duration, goal_s=GOAL_S, silence_goal_s=SILENCE_GOAL_S,
                                    runs=[dict(code=name, launch=kind, **r) for (name, kind), r in runs.items()],
                                    table=table))


if __name__ == "__main__":
    main()
