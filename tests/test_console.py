"""The server console's native-stderr filter (mclmcf.serving.console) never blocks the threads that log: each test
runs a fresh Python process whose fd 2 goes through the real filter, breaks the copier in a real way, then writes
1 MB to fd 2 line by line (16 times a pipe's buffer). Before the fix both failed: the pipe filled or broke."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOD = "for _ in range(50_000):\n    os.write(2, b'line of native chatter\\n')\nprint('not blocked', flush=True)\n"


def run(script: str) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter; a write that blocks on a full pipe ends at the timeout as a failure."""
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(script) + FLOOD], cwd=ROOT, capture_output=True,
                              timeout=60)
    except subprocess.TimeoutExpired as hung:
        raise AssertionError("writing to fd 2 blocked: the stderr pipe filled up") from hung


def test_filtered_lines_still_pass_and_noise_is_dropped():
    done = run("""
        import os
        from mclmcf.serving.console import filter_native_stderr
        filter_native_stderr()
        os.write(2, b"Created TensorFlow Lite XNNPACK delegate for CPU.\\nTraceback: a real fault\\n")
    """)
    assert b"not blocked" in done.stdout and b"a real fault" in done.stderr and b"XNNPACK" not in done.stderr


def test_a_copier_that_dies_gives_fd_2_back_to_the_real_stderr():
    done = run("""
        import os, re, time
        from mclmcf.serving.console import NATIVE_NOISE, filter_native_stderr
        class Breaks:   # the copier's filter fails on one line: its thread ends with the exception
            def search(self, line):
                if b"break" in line:
                    raise RuntimeError("copier broken")
                return NATIVE_NOISE.search(line)
        filter_native_stderr(Breaks())
        os.write(2, b"break\\n")
        time.sleep(0.5)
    """)
    assert b"not blocked" in done.stdout and b"line of native chatter" in done.stderr


def test_a_real_stderr_that_went_away_does_not_stop_the_copier():
    done = run("""
        import os
        from mclmcf.serving import console
        real_fds, dup = [], os.dup
        os.dup = lambda fd: real_fds.append(dup(fd)) or real_fds[-1]
        console.filter_native_stderr()
        os.dup = dup
        os.close(real_fds[0])   # every copy to the real stderr now fails (EBADF)
        os.write(2, b"lost\\n")
    """)
    assert b"not blocked" in done.stdout
