"""Hand the memory a request freed back to the system.

What the server grows by under many requests is not live objects: benchmarks/bench_memory_growth.py (30 requests
of each kind on the default weights) saw 1.4 MiB more Python objects and 285 MiB more RSS after 30 good requests,
of which glibc's ``malloc_trim(0)`` gave 200 MiB back; 180 MiB after the malformed corpus, 83 of them given back.
The rest of the freed memory stays in the C allocator's free lists (the decoders', NumPy's and PyTorch's buffers
are freed, but glibc keeps their pages for reuse). ``release_freed_memory`` asks it to return them after each
request. Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

try:
    _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
except (OSError, AttributeError):   # not glibc
    _malloc_trim = None


def release_freed_memory() -> None:
    """Return the C heap's free pages to the system (a few ms; safe while other threads allocate)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
