"""Worker processes of the batch commands exit when their parent is killed (kill -9 leaves no orphans)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_extraction_workers_exit_when_the_parent_is_killed(make_clip, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    lines = ["clip,transcript,label,split"]
    for i in range(12):                   # more clips than the workers finish before the kill
        shutil.copy(make_clip("talk.mp4"), clips / f"c{i}.mp4")
        lines.append(f"c{i}.mp4,hello,1.0,train")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    parent = subprocess.Popen([sys.executable, "-m", "preprocessing.extract", "--clips", str(clips), "--labels",
                               str(tmp_path / "labels.csv"), "--out", str(tmp_path / "out"), "--workers", "2"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []

    def started() -> bool:
        workers[:] = [p for p in children(parent.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        return len(workers) >= 2

    try:
        assert wait_for(started, 120), "the extraction never started its workers"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert wait_for(lambda: not any(alive(p) for p in workers), 30), \
            f"workers {[p for p in workers if alive(p)]} still run after their parent was killed"
    finally:
        parent.kill()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
