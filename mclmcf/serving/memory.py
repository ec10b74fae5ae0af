"""Keep the server's native memory from growing: hand freed memory back, and let threads share malloc's heaps.

What the server grows by under many requests is not live objects but freed native memory the C allocator keeps
(the decoders', NumPy's and PyTorch's buffers): bench_memory_growth.py saw +1.4 MiB of Python objects beside
+285 MiB of RSS after 30 good requests, of which glibc's ``malloc_trim(0)`` gave 200 MiB back.
``release_freed_memory`` asks it to return them after each request. What trimming cannot return is the freed
space between live blocks of each heap; glibc gives each new thread a heap of its own (up to 8 per core), and the
server's worker threads come and go. In soaks side by side (4 clients, 2 cores) RSS rose 1592 -> 1719 MiB in
6 minutes with glibc's default and 1589 -> 1633 MiB with two heaps (``limit_malloc_arenas(2)``, app.py); after
10 minutes 1716 against 1677 MiB, both still rising slowly (docs/demo.md, memory budget). Elsewhere than glibc (macOS, musl) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _malloc_trim, _mallopt = _libc.malloc_trim, _libc.mallopt
except (OSError, AttributeError):   # not glibc
    _malloc_trim = _mallopt = None
M_ARENA_MAX = -8   # glibc's mallopt parameter (malloc.h)


def release_freed_memory() -> None:
    """Return the C heap's free pages to the system (a few ms; safe while other threads allocate)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def limit_malloc_arenas(arenas: int) -> None:
    """Let glibc's malloc keep at most ``arenas`` heaps. By default it gives each new thread a heap of its own, up to
    8 per core, and each keeps its own freed pages. Applies to threads that first allocate after the call."""
    if _mallopt is not None:
        _mallopt(M_ARENA_MAX, arenas)
