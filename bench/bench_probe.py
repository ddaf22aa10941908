"""The training steps after a collapse probe, with NumPy's BLAS threads free to wake and kept
asleep (``engine.openmp.numpy_blas_on_one_thread``).

    .venv/bin/python bench/bench_probe.py [--threads N ...] [--rounds R]

The probe (``eval.diagnostics_every_steps``) computes its statistics with NumPy, whose
OpenBLAS threads spin for about 0.1 s after a call; a training step on two threads beside them
is slower. Each line: a run's settings, the intra-op thread count, milliseconds of the step
right after a probe and the mean step of a probe's cycle, both ways, from rounds that
alternate the two (medians over the rounds; each round is 10 probe cycles of a real
``Trainer``).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split

import engine.train.evaluator as evaluator  # noqa: E402
from engine.cli import load_config  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.device import set_cpu_threads  # noqa: E402
from engine.lessons import load_lesson  # noqa: E402
from engine.openmp import numpy_blas_on_one_thread  # noqa: E402
from engine.train.loop import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CYCLES = 10


def configs() -> dict[str, RunConfig]:
    """The app's default run (a probe every 20 steps) and a lesson's (every 10)."""
    lesson = load_lesson("simclr_temperature")
    app = load_config(str(ROOT / "assets/runs/simclr_shapes.yaml"), [])
    out = {"app default (simclr_shapes)": app,
           "lesson simclr_temperature": lesson.config(lesson.run_names()[1])}
    return {k: v.with_overrides({"train.device": "cpu", "train.epochs": 1000})
            for k, v in out.items()}


def cycles(trainer: Trainer, every: int, kept_asleep: bool) -> list[list[float]]:
    """Seconds of each step of :data:`CYCLES` probe cycles: row i is the cycle after probe i,
    its first entry the step right after the probe."""
    evaluator.numpy_blas_on_one_thread = (numpy_blas_on_one_thread if kept_asleep
                                          else contextlib.nullcontext)
    batches, rows = trainer.batches(), []
    for _ in range(CYCLES + 1):
        trainer.probe(trainer.step)
        trainer.method.train()
        row = []
        for _ in range(every):
            idx, x = next(batches)
            t0 = time.perf_counter()
            trainer.train_step(idx, trainer.base_lr, 0.0, x)
            row.append(time.perf_counter() - t0)
        rows.append(row)
    return rows[1:]  # the first cycle warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[2, 1])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| run | threads | step after a probe, woken / kept asleep (ms) | mean step, woken / "
          "kept asleep (ms) | ratio of means |")
    print("|---|---|---|---|---|")
    for name, cfg in configs().items():
        trainer = Trainer(cfg)
        every = cfg.eval.diagnostics_every_steps
        for threads in args.threads:
            set_cpu_threads(threads)
            first: dict[bool, list[float]] = {False: [], True: []}
            mean: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.rounds):
                for asleep in (False, True):
                    rows = cycles(trainer, every, asleep)
                    first[asleep].append(statistics.median(r[0] for r in rows) * 1e3)
                    mean[asleep].append(statistics.mean(s for r in rows for s in r) * 1e3)
            f = {k: statistics.median(v) for k, v in first.items()}
            m = {k: statistics.median(v) for k, v in mean.items()}
            print(f"| {name} | {threads} | {f[False]:.1f} / {f[True]:.1f} | "
                  f"{m[False]:.1f} / {m[True]:.1f} | {m[False] / m[True]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
