"""Memory a request freed goes back to the system (mclmcf.serving.memory, issue #39 point 5)."""

from __future__ import annotations

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
