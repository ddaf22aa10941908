"""The C allocator's settings for a long-lived process that trains many runs (the app's server).

glibc's ``malloc`` raises its mmap threshold each time a large block is freed (up to 32 MB), so
after the first runs, tensors of a few MB come from its heaps instead of their own mappings,
and each new thread (every run, every page rerun) may get a heap of its own. Freed blocks
there stay resident between the blocks still in use: on a 2-core server whose participants
started and stopped 166 runs in 4 minutes, the idle server grew from 872 to 1,388 MB (+59 %).
A fixed threshold (large blocks are always mapped, and unmapped when freed) and two heaps
hold it to +12 to +26 % in the same test (BENCHMARKS.md, "Workshop load").

Set with ``mallopt`` when the engine is imported (the environment variables
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_ARENA_MAX`` are read only when a process starts); a
value the user set in the environment wins. A no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: mallopt parameters (glibc's malloc.h)
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8
#: blocks at least this large get their own mapping (glibc's initial threshold, kept fixed)
MMAP_THRESHOLD = 128 * 1024
#: heaps for all threads (glibc's default is 8 per core)
ARENA_MAX = 2


def limit_heap_growth() -> bool:
    """Apply the settings above; True if the C library took them."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = True
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        ok &= bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if "MALLOC_ARENA_MAX" not in os.environ:
        ok &= bool(mallopt(M_ARENA_MAX, ARENA_MAX))
    return ok
