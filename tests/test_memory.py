"""The allocator settings a long-lived server needs are in force once the engine is imported."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from engine.memory import limit_heap_growth

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

#: run in a fresh process: frees three 8-MB blocks (glibc's dynamic threshold would rise past
#: them), then prints how many new mappings one 4-MB block got (1: its own; 0: the heap's)
PROBE = """
import ctypes, ctypes.util, sys
if sys.argv[1] == "engine":
    import engine
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
for _ in range(3):
    libc.free(libc.malloc(8 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(4 << 20)
print(libc.mallinfo2().hblks - before)
libc.free(block)
"""


def own_mappings(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, env=env, cwd=Path(__file__).resolve().parents[1])
    return int(out.stdout)


def test_the_settings_are_accepted():
    assert limit_heap_growth()


def test_after_the_engine_is_imported_large_blocks_are_mapped_and_given_back():
    assert own_mappings("plain") == 0  # glibc's default: the freed blocks raised the threshold
    assert own_mappings("engine") == 1  # a fixed threshold: its own mapping, unmapped on free
