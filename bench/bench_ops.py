"""Time each augmentation op alone: one view of a batch of uint8 images on the CPU, p = 1.

    .venv/bin/python bench/bench_ops.py [--batch 512] [--size 32] [--threads 1] [OP ...]

Prints one line per op: the median of 15 calls after 3 warm-up calls, in milliseconds per
batch (normalisation included, as the training loop calls it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split

import torch  # noqa: E402

from engine.augment import OPS, Augmenter  # noqa: E402


def time_op(name: str, x: torch.Tensor, calls: int = 15) -> float:
    """Median seconds of one view of ``x`` with ``name`` alone."""
    aug = Augmenter([[{"op": name, "p": 1.0}]], (0.5,), (0.25,))
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        aug.view(x, 0, g)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        aug.view(x, 0, g)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ops", nargs="*", default=sorted(OPS))
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8)
    for name in args.ops:
        print(f"{name:20s} {time_op(name, x) * 1000:7.1f} ms / {args.batch} images", flush=True)


if __name__ == "__main__":
    main()
