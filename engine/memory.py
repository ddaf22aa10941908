"""Giving memory back to the system in a long-lived process that trains many runs in threads
(a lesson or a sweep from the command line), and in the app's server, which trains each run in
a child process of its own (:mod:`engine.train.process`) but reruns pages in new threads.

glibc's ``malloc`` raises its mmap threshold each time a large block is freed (up to 32 MB), so
after the first steps a run's tensors come from its heaps, not from mappings of their own; and
each new thread (every run, every page rerun) may get a heap of its own, up to 8 per core.
What a run frees there stays resident, between blocks still in use, after the run has ended.

- :func:`limit_heaps`, when the engine is imported: two heaps for all threads.
- :func:`give_back`, when a run ends (in the process that trained it, or that followed its
  child): free pages of every heap go back to the system (``malloc_trim``).

A fixed mmap threshold would also keep freed tensors out of the heaps, but maps and unmaps
every activation of every step: 28 % slower SimCLR steps on a 2-core CPU (377 against 293 ms,
``small_cnn``, batch 128); it is not used. Measured effect of the two above: BENCHMARKS.md,
"Workshop load". A value the user set in the environment (``MALLOC_ARENA_MAX``) wins. Both
are no-ops off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache
from typing import Any

#: mallopt's parameter for the number of heaps (glibc's malloc.h)
M_ARENA_MAX = -8
#: heaps for all threads (glibc's default is 8 per core)
ARENA_MAX = 2


@cache
def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 — glibc has both
    except (OSError, AttributeError):
        return None
    return libc


def limit_heaps() -> bool:
    """At most :data:`ARENA_MAX` heaps; True if the C library took it."""
    libc = _libc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, ARENA_MAX))


def give_back() -> bool:
    """Return the free pages of every heap to the system; True if some were."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
