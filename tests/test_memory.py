"""A server that trains run after run gives what a run freed back to the system."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from engine.memory import limit_heaps

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc")

#: run in a fresh process: a thread (a run's, with a heap of its own) fills 64 MB of 4-MB
#: blocks, each followed by a small block that stays, and frees them; prints the resident kB
#: that left after it ended, with ``give_back`` or without
PROBE = """
import ctypes, ctypes.util, sys, threading
import engine
from engine.memory import give_back
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
kept = []
def run():
    for _ in range(3):  # freed large blocks raise the mmap threshold: the next use the heap
        libc.free(libc.malloc(8 << 20))
    blocks = [libc.malloc(4 << 20) for _ in range(16) if not kept.append(libc.malloc(64))]
    for b in blocks:
        ctypes.memset(b, 1, 4 << 20)
    for b in blocks:
        libc.free(b)
thread = threading.Thread(target=run)
thread.start()
thread.join()
before = rss()
if sys.argv[1] == "give_back":
    give_back()
print(before - rss())
"""


def released_kb(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, env=env, cwd=Path(__file__).resolve().parents[1])
    return int(out.stdout)


def test_the_heap_limit_is_accepted():
    env_set = "MALLOC_ARENA_MAX" in os.environ
    assert limit_heaps() is not env_set  # a user's own setting wins


def test_give_back_returns_what_a_run_freed():
    assert released_kb("keep") < 8 * 1024  # freed, yet resident without it
    assert released_kb("give_back") > 48 * 1024  # most of the 64 MB leave
