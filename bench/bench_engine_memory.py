"""Memory of the engine alone in a long-lived process: runs started and stopped through one
``RunRegistry``, each from a thread of its own (as the app's pages do), 3 to 8 s each; the
process's resident memory once idle after every 8 runs, before and after ``malloc_trim``.

Tells the engine's share of a server's memory growth from the app's (``bench_load.py``
measures the whole server with browsers)::

    python bench/bench_engine_memory.py                # 32 runs, about 4 minutes
    python bench/bench_engine_memory.py --rounds 2
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.train.registry import RunRegistry  # noqa: E402
from engine.train.store import RunStore  # noqa: E402


def rss_mb() -> int:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1]) // 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runs-per-round", type=int, default=8)
    args = ap.parse_args()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    cfg = RunConfig().with_overrides({"method.name": "simclr", "train.max_seconds": 60})
    ds = load_dataset(cfg.data)
    registry = RunRegistry(RunStore(tempfile.mkdtemp(prefix="ssl-studio-mem-")))
    rng = random.Random(0)

    def one() -> None:
        handle = registry.start(cfg, ds)
        time.sleep(rng.uniform(3, 8))
        handle.stop()

    def runs(n: int) -> None:
        for _ in range(n):
            t = threading.Thread(target=one)
            t.start()
            t.join()
        time.sleep(2)
        gc.collect()

    runs(3)  # warm: data, model, evaluation made once
    print(f"start (3 runs made): {rss_mb()} MB", flush=True)
    for k in range(1, args.rounds + 1):
        runs(args.runs_per_round)
        before = rss_mb()
        libc.malloc_trim(0)
        print(f"after {k * args.runs_per_round} more runs: {before} MB "
              f"(after malloc_trim: {rss_mb()} MB)", flush=True)


if __name__ == "__main__":
    main()
