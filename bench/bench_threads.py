"""One thread or every core? Training steps of the lessons, the app's default and the learning
recipe, timed on the CPU with one intra-op thread and with every core, in turns.

    .venv/bin/python bench/bench_threads.py [--burn K] [--only NAME ...] [--every-run]

OpenMP's threads sleep while they wait (``engine.openmp``), and waking them costs more than a
small step gains from a second core (``GOMP_SPINCOUNT=10000`` lets them spin about 0.1 ms
first: BENCHMARKS.md, "A short spin before sleeping"). Each line: milliseconds per
step on 1 thread and on every core (medians of 5 alternating rounds of about a second each),
their ratio, and the count a run of it picks from its own first steps
(``engine.device.StepThreads``, given the same steps as in the training loop). ``--burn K``
keeps K other processes busy meanwhile (a loaded machine: the app's UMAP, another run).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split

from engine.bench import interleave, step_timer  # noqa: E402
from engine.cli import load_config  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.device import StepThreads, cpu_cores, set_cpu_threads  # noqa: E402
from engine.lessons import list_lessons, load_lesson  # noqa: E402
from engine.train.loop import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def configs(every_run: bool = False) -> dict[str, RunConfig]:
    """The first trained run of every lesson (or ``every_run``), the app's default run, the
    learning tests' recipe and a step too big for a trial."""
    out = {}
    for name in list_lessons():
        lesson = load_lesson(name)
        if lesson.skip_reason() is not None:
            continue
        trained = {run: c for run in lesson.run_names()
                   if (c := lesson.config(run)).train.epochs or c.train.max_seconds}
        for run, cfg in list(trained.items())[: None if every_run else 1]:
            out[f"lesson {name}" + (f": {run}" if every_run else "")] = cfg
    app = ROOT / "assets/runs/simclr_shapes.yaml"
    out["app default (simclr_shapes)"] = load_config(str(app), [])
    out["learning recipe (small_cnn 16, 32 px, batch 128)"] = RunConfig().with_overrides({
        "model.backbone": "small_cnn", "model.width": 16, "train.batch_size": 128})
    # a step over StepThreads.BIG_STEP_SECONDS: every core, no trial
    out["big step (small_cnn 32, 32 px, batch 512)"] = RunConfig().with_overrides({
        "model.backbone": "small_cnn", "model.width": 32, "train.batch_size": 512})
    return {k: v.with_overrides({"train.device": "cpu", "train.epochs": 1000}) for k, v in
            out.items()}


def timed(trainer: Trainer, threads: int):  # noqa: ANN201
    """A step timer that runs its steps on ``threads`` intra-op threads."""
    run = step_timer(trainer)

    def timer(n: int) -> float:
        set_cpu_threads(threads)
        return run(n)

    return timer


def picked(trainer: Trainer) -> int:
    """The thread count a run of ``trainer`` picks in its first trial: its steps timed as the
    training loop times them."""
    batches, threads = trainer.batches(), StepThreads(True)
    while threads.active and not threads.choices:
        t0 = time.perf_counter()
        idx, x = next(batches)
        trainer.train_step(idx, trainer.base_lr, 0.0, x)
        threads.observe(time.perf_counter() - t0)
    return threads.threads


def burn() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burn", type=int, default=0, help="busy processes meanwhile")
    parser.add_argument("--only", nargs="*", help="names containing one of these")
    parser.add_argument("--every-run", action="store_true",
                        help="every trained run of a lesson, not just its first")
    args = parser.parse_args()
    cores = cpu_cores()
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.burn)]
    for p in burners:
        p.start()
    print(f"{cores} cores, {args.burn} busy processes beside\n")
    print(f"| run | ms/step, 1 thread | ms/step, {cores} threads | {cores} ÷ 1 | a run picks |"
          " faster |")
    print("|---|---|---|---|---|---|")
    try:
        for name, cfg in configs(args.every_run).items():
            if args.only and not any(o in name for o in args.only):
                continue
            trainer = Trainer(cfg)
            trainer.method.train()
            picks = picked(trainer)
            timers = {1: timed(trainer, 1), cores: timed(trainer, cores)}
            probe = timers[1](2) / 2
            steps = max(1, round(1.0 / max(probe, 1e-3)))
            samples = interleave(timers, rounds=5, steps=steps, warmup=1)
            ms = {k: statistics.median(v) * 1000 for k, v in samples.items()}
            faster = 1 if ms[1] <= ms[cores] else cores
            print(f"| {name} | {ms[1]:.1f} | {ms[cores]:.1f} | {ms[cores] / ms[1]:.2f} | "
                  f"{picks} | {faster}{'' if picks == faster else ' (picked the other)'} |",
                  flush=True)
    finally:
        for p in burners:
            p.kill()


if __name__ == "__main__":
    main()
