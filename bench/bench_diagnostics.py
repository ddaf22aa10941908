"""What the collapse diagnostics cost: training steps per second with the probe off against
the default cadence, same config, same process, interleaved.

Two Trainers are built on one data set, identical except ``eval.diagnostics_every_steps``
(0 = off, and the default). Their event generators (the real training loop) are pulled in
turns, ``--steps`` steps at a time, ``--repeats`` times each, alternating which goes first, so
both see the same machine load. A chunk's rate is steps over the time between its first and
last ``step`` event, which includes every probe the loop ran in between (the probe runs after
a step's event is yielded). Evaluation is pushed out of the way (``eval.every_seconds`` huge),
so only steps and probes are timed.

Two clocks: wall time, and this process's CPU time (all its threads), which other people's
work on a shared machine disturbs much less. Prints one JSON object per chunk, then a summary:
for each clock the median over the repeats of the paired ratio (probe-on rate over the
probe-off rate of the same repeat); the overhead is 1 minus that ratio. Target: at most 5 %.
As a cross-check less sensitive to a busy machine, ``--samples`` training steps and probes are
then timed one after the other on the probe-on Trainer: the median probe over ``every`` median
steps is the share the probe adds (``component_percent``).

Usage: python bench/bench_diagnostics.py [--steps 20] [--repeats 10] [--samples 20]
                                         [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.cli import parse_value  # noqa: E402
from engine.config import EvalConfig, RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.train.loop import Trainer  # noqa: E402

#: the CPU recipe of the learning tests (tests/test_methods_learning.py, COMMON)
RECIPE = {
    "data.name": "shapes",
    "data.image_size": 32,
    "model.backbone": "small_cnn",
    "model.width": 16,
    "method.name": "simclr",
    "train.device": "cpu",
    "train.batch_size": 128,
    "train.epochs": 1000,
    "train.checkpoint_every_seconds": 0,
    "eval.every_seconds": 1e9,
    "eval.snapshot_size": 0,
    "eval.knn_train_size": 500,
    "eval.knn_test_size": 250,
}


def chunk_rate(events: Iterator[dict[str, Any]], steps: int) -> tuple[float, float, int]:
    """Pull events until ``steps`` more steps have run; returns (steps per wall second, steps
    per CPU second of this process, steps)."""
    first: tuple[int, float, float] | None = None
    for ev in events:
        if ev["type"] != "step":
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        if first is None:
            first = (ev["step"], wall, cpu)
        elif ev["step"] - first[0] >= steps:
            n = ev["step"] - first[0]
            return n / (wall - first[1]), n / max(cpu - first[2], 1e-9), n
    raise RuntimeError("the run ended before the benchmark did; raise train.epochs")


def component_seconds(trainer: Trainer, samples: int) -> tuple[float, float]:
    """Median seconds of one training step and of one probe, timed alternately."""
    trainer.method.train()
    batches = trainer.batches()
    steps, probes = [], []
    for _ in range(samples):
        idx, x = next(batches)
        t0 = time.perf_counter()
        trainer.train_step(idx, trainer.base_lr, 0.5, x)
        t1 = time.perf_counter()
        trainer.probe(0)
        probes.append(time.perf_counter() - t1)
        steps.append(t1 - t0)
    return statistics.median(steps), statistics.median(probes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed chunk")
    parser.add_argument("--repeats", type=int, default=10, help="chunks per setting")
    parser.add_argument("--samples", type=int, default=20, help="steps and probes timed alone")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = dict(RECIPE)
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = parse_value(value)
    base = RunConfig().with_overrides(overrides)
    every = base.eval.diagnostics_every_steps or EvalConfig().diagnostics_every_steps
    dataset = load_dataset(base.data)
    settings = {"off": 0, "on": every}
    trainers = {
        name: Trainer(base.with_overrides({"eval.diagnostics_every_steps": n}), dataset)
        for name, n in settings.items()
    }
    gens = {name: trainer.events() for name, trainer in trainers.items()}
    for gen in gens.values():  # start-up: step-0 evaluation and probe, first steps
        chunk_rate(gen, 3)
    wall: dict[str, list[float]] = {name: [] for name in settings}
    cpu: dict[str, list[float]] = {name: [] for name in settings}
    for repeat in range(args.repeats):
        order = list(settings) if repeat % 2 == 0 else list(reversed(settings))
        for name in order:
            w, c, n = chunk_rate(gens[name], args.steps)
            wall[name].append(w)
            cpu[name].append(c)
            print(json.dumps({"diagnostics": name, "repeat": repeat, "steps": n,
                              "steps_per_s": round(w, 3), "steps_per_cpu_s": round(c, 3)}),
                  flush=True)

    def paired(rates: dict[str, list[float]]) -> float:
        return statistics.median(on / off for on, off in zip(rates["on"], rates["off"],
                                                              strict=True))

    ratio_wall, ratio_cpu = paired(wall), paired(cpu)
    step_s, probe_s = component_seconds(trainers["on"], args.samples)
    print(json.dumps({
        "bench": "diagnostics_overhead",
        "diagnostics_every_steps": every,
        "probe_size": base.eval.probe_size,
        "steps_per_s_off": round(statistics.median(wall["off"]), 3),
        "steps_per_s_on": round(statistics.median(wall["on"]), 3),
        "ratio_on_over_off_wall": round(ratio_wall, 4),
        "ratio_on_over_off_cpu": round(ratio_cpu, 4),
        "overhead_percent_wall": round(100 * (1 - ratio_wall), 2),
        "overhead_percent_cpu": round(100 * (1 - ratio_cpu), 2),
        "step_s": round(step_s, 4),
        "probe_s": round(probe_s, 4),
        "component_percent": round(100 * probe_s / (every * step_s), 2),
        "config": {k: v for k, v in overrides.items() if not k.startswith("eval.")},
    }), flush=True)


if __name__ == "__main__":
    main()
