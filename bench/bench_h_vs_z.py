"""Which feature, which settings and which budget make SupCon's classes cluster on the map.

The README's Compare screenshot put SupCon's encoder output ``h`` (silhouette 0.04) against
cross-entropy's (0.65), after 225 against 504 steps (the same time budget, SupCon's steps
twice as dear); the supcon lesson, on its own settings (no projector), shows the opposite.
This trains SupCon with and without its projector and cross-entropy on the same data for the
same number of steps, and reads the silhouette (cosine, by class, on the test images of each
map snapshot) of ``h`` and of ``z`` at every epoch, so budgets can be compared step for step.

    .venv/bin/python bench/bench_h_vs_z.py [--epochs 6.5] [--image-size 32] [--width 16]

Prints one row per run and snapshot: steps, epochs, seconds, kNN top-1 (h), silhouette h, z.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import RunConfig  # noqa: E402
from engine.eval.clusters import silhouette  # noqa: E402
from engine.train.runner import run_foreground  # noqa: E402
from engine.train.store import RunStore  # noqa: E402

RUNS = {
    "cross_entropy": {"method.name": "cross_entropy"},
    "supcon (projector)": {"method.name": "supcon"},
    "supcon (no projector)": {"method.name": "supcon", "method.projector": False},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=float, default=6.5)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--width", type=int, default=0)
    p.add_argument("--train-size", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", nargs="*", default=list(RUNS))
    args = p.parse_args()
    store = RunStore(tempfile.mkdtemp(prefix="h_vs_z_"))
    base = {"data.image_size": args.image_size, "model.width": args.width,
            "data.train_size": args.train_size, "train.device": "cpu",
            "train.epochs": args.epochs, "train.max_seconds": 0, "eval.every_epochs": 1,
            "eval.every_seconds": 1e6, "eval.diagnostics_every_steps": 0, "seed": args.seed}
    print("run | step | epoch | seconds | kNN h | kNN z | silhouette h | silhouette z")
    for name in args.runs:
        cfg = RunConfig().with_overrides({**base, **RUNS[name]})
        t0 = time.perf_counter()
        run, last = run_foreground(cfg, store)
        wall = time.perf_counter() - t0
        evals = {e["step"]: e for e in run.metrics("eval")}
        steps = {e["step"]: e for e in run.metrics("step")}
        spe = max(1, cfg.data.train_size or 10000) // cfg.train.batch_size
        for step in run.snapshots():
            snap = run.load_snapshot(step)
            keep = snap["labels"] >= 0
            sil = {k: silhouette(snap[k][keep], snap["labels"][keep])
                   for k in ("h", "z") if k in snap}
            ev = evals.get(step, {})
            secs = steps.get(step, {}).get("elapsed", float("nan"))
            print(f"{name} | {step} | {step / spe:.1f} | {secs:.0f} | "
                  f"{ev.get('knn_top1', float('nan')):.3f} | "
                  f"{ev.get('knn_top1_z', float('nan')):.3f} | {sil['h']:.3f} | "
                  f"{sil.get('z', float('nan')):.3f}", flush=True)
        print(f"{name}: {last.get('steps')} steps, linear probe {last.get('linear_top1')}, "
              f"{wall:.0f} s wall", flush=True)


if __name__ == "__main__":
    main()
