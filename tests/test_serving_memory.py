"""Memory a request freed goes back to the system (mclmcf.serving.memory, issue #39 point 5)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

FREED_AND_KEPT = """
import sys
from pathlib import Path
from mclmcf.serving.memory import release_freed_memory

def rss_mib():
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024

blocks = [bytearray(4096) for _ in range(60_000)]     # 240 MB in blocks malloc keeps on its heap (not mmap)
del blocks[:-1]                                       # freed: the last one pins the top of the heap
freed = rss_mib()
release_freed_memory()
print(freed, rss_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_memory_is_returned_to_the_system():
    """Without the call, glibc keeps the freed blocks' pages: RSS stays where the allocation peaked."""
    out = subprocess.run([sys.executable, "-c", FREED_AND_KEPT], capture_output=True, text=True, check=True)
    freed, released = map(float, out.stdout.split())
    assert freed - released > 150, (freed, released)


ARENAS_AFTER_THREADS = """
import ctypes, sys, tempfile, threading
from mclmcf.serving.memory import limit_malloc_arenas

if sys.argv[1] != "default":
    limit_malloc_arenas(int(sys.argv[1]))
held, start = [], threading.Barrier(8)

def allocate():
    start.wait()
    held.append([bytearray(4096) for _ in range(100)])   # malloc'd blocks, from this thread's heap

threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile("r", suffix=".xml") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(report.read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and malloc_info")
def test_threads_share_the_limited_malloc_arenas():
    """Eight threads allocating get heaps of their own by default (up to 8 per core), at most the limit after it."""
    def heaps(limit: str) -> int:
        out = subprocess.run([sys.executable, "-c", ARENAS_AFTER_THREADS, limit], capture_output=True, text=True,
                             check=True)
        return int(out.stdout)
    assert heaps("default") > 2
    assert heaps("2") <= 2


def test_server_keeps_a_bounded_number_of_sessions():
    """Each visitor session holds a copy of the page's component configs; the server keeps the last SESSIONS_KEPT."""
    import gradio as gr

    import app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with gr.Blocks() as demo:
        gr.Textbox()
    app.serve(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        for i in range(app.SESSIONS_KEPT + 3):
            demo.state_holder[f"visitor-{i}"]
        assert len(demo.state_holder.session_data) == app.SESSIONS_KEPT
        assert "visitor-0" not in demo.state_holder and f"visitor-{app.SESSIONS_KEPT + 2}" in demo.state_holder
    finally:
        demo.close()
