"""Time to accuracy on real images on the CPU: our SimCLR against lightly's standard recipe.

CIFAR-10 (``cifar10-jpg.tar.gz``, read by the engine's folder loader, 32 px), the small CNN,
the same wall time of training each, both evaluated by the same kNN: k 200, T 0.1, cosine
similarity (Wu et al. 2018, https://arxiv.org/abs/1805.01978), all 50,000 train images as the
memory bank, all 10,000 test images as queries, on the backbone's features ``h``.

- ``ours``: the run the app and ``python -m engine train`` make for SimCLR on this folder
  (``RunConfig`` with ``data.name=folder``; everything else from the engine's recipe,
  ``engine.recipe``), trained by ``Trainer.train_step``: uint8 images in memory, two views made
  batched with per-sample parameters, forward, NT-Xent, backward, AdamW.
- ``lightly``: lightly's standard recipe, as its CIFAR-10 benchmark writes it: a torch
  ``DataLoader`` over PIL images with ``SimCLRTransform(input_size=32, cj_strength=0.5,
  gaussian_blur=0.0)`` (crop scale (0.08, 1), colour jitter 0.4/0.4/0.4/0.1 with p 0.8, grey
  0.2, flip), ``NTXentLoss()`` (temperature 0.5). Same network (backbone + projector
  ``mlp(d, 512, 128)``, same initial weights), same batch, same optimiser (AdamW, the same
  learning rate, warm-up and cosine schedule over the same seconds, the same weight decay,
  applied to every parameter as lightly's examples do; ours spares biases and batch norm),
  DataLoader with 0 workers (on 2 cores the
  fastest: ``bench_train_step.py``).
- ``pixels``: the raw images (normalised, flattened) through the same kNN: the floor; and
  ``random``: the network's initial weights (the same for both) with its batch-norm statistics
  measured on the train images (with its initial statistics it is below pixels, 0.366 against
  0.402: BENCHMARKS.md): the floor a trained network must pass to have learned anything.

The two train in turns of ``--turn`` seconds (order reversed every other round) until each has
used ``--seconds`` of its own training time, so a change in the shared machine's load falls on
both alike. Evaluation time is not counted. ``--channels-last`` adds a third pipeline, lightly's
recipe with the weights in channels_last (the memory format the engine trains in on the CPU).

    flock /tmp/cpu-bench.lock .venv/bin/python bench/bench_cifar10_cpu.py
    .venv/bin/python bench/bench_cifar10_cpu.py --seconds 20 --queries 2000   # a quick check
    .venv/bin/python bench/bench_cifar10_cpu.py --set method.temperature=0.5  # change ours

One JSON line per pipeline, then a summary line with ``ours_minus_lightly``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split
import torch  # noqa: E402

from engine.cli import parse_sets  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.models import build_backbone  # noqa: E402
from engine.train.loop import Trainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simclr_pipelines import (  # noqa: E402
    Encoder,
    batch_norm_statistics,
    knn_accuracy,
    lightly,
    ours,
    train_in_turns,
)

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"
GOAL = 0.03  # ours - lightly, kNN top-1 (the issue)


def emit(**row: object) -> None:
    print(json.dumps(row), flush=True)


def our_config(archive: str, seconds: float, sets: dict) -> RunConfig:
    """SimCLR on the CIFAR-10 folder as the app starts it: only the data, method, backbone and
    time budget named; preset, batch, learning rate and warm-up from the engine's recipe."""
    return RunConfig().with_overrides({
        "data.name": "folder", "data.root": archive, "data.image_size": 32,
        "method.name": "simclr", "model.backbone": "small_cnn",
        "train.epochs": 0, "train.max_seconds": seconds, **sets,
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifar10", default=str(ARCHIVE), help="cifar10-jpg.tar.gz (folder loader)")
    ap.add_argument("--seconds", type=float, default=300, help="training time of each")
    ap.add_argument("--turn", type=float, default=10, help="seconds per turn")
    ap.add_argument("--queries", type=int, default=0, help="test images (0 = all 10,000)")
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--knn-temperature", type=float, default=0.1)
    ap.add_argument("--channels-last", action="store_true",
                    help="also lightly's recipe with channels_last weights")
    ap.add_argument("--no-peer", action="store_true", help="ours and raw pixels only")
    ap.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE,...",
                    help="also ours with these overrides, trained in the same turns")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override our run's config, as for python -m engine train")
    args = ap.parse_args()
    if not Path(args.cifar10).exists():
        emit(bench="cifar10_cpu", skipped=f"CIFAR-10 archive not found: {args.cifar10}")
        return
    cfg = our_config(args.cifar10, args.seconds, parse_sets(args.set))
    t0 = time.perf_counter()
    dataset = load_dataset(cfg.data)
    emit(bench="cifar10_cpu_data", train=len(dataset.train), test=len(dataset.test),
         load_s=round(time.perf_counter() - t0, 1))
    trainer = Trainer(cfg, dataset)  # sets torch's threads to the cores available
    random = Encoder(copy.deepcopy(trainer.method.backbone))
    pipes = [ours(trainer)]
    for variant in args.variant:
        sets = parse_sets(variant.split(","))
        pipes.append(ours(Trainer(cfg.with_overrides(sets), dataset), f"ours[{variant}]"))
    if not args.no_peer:
        pipes.append(lightly(trainer, dataset))
        if args.channels_last:
            pipes.append(lightly(trainer, dataset, channels_last=True))
    train_in_turns(pipes, trainer, args.seconds, args.turn)

    knn = {"k": args.k, "temperature": args.knn_temperature}
    pixels = Encoder(build_backbone("pixels", dataset.channels, dataset.image_size))
    result = {}
    batch_norm_statistics(random, dataset.train.images, trainer.augment.normalise)
    for name, net in (("pixels", pixels), ("random", random)):
        result[name] = knn_accuracy(net, dataset, trainer, args.queries, **knn)
        emit(bench="cifar10_cpu", pipeline=name, knn_top1=round(result[name], 4))
    for p in pipes:
        result[p.name] = knn_accuracy(p.net, dataset, trainer, args.queries, **knn)
        emit(bench="cifar10_cpu", pipeline=p.name, seconds=round(p.seconds, 1), steps=p.steps,
             epochs=round(p.steps / trainer.steps_per_epoch, 2),
             images_per_s=round(p.steps * trainer.batch_size / p.seconds, 1),
             final_loss=round(p.loss, 3), knn_top1=round(result[p.name], 4))
    a = cfg.augment
    emit(bench="cifar10_cpu_summary", seconds=args.seconds, threads=torch.get_num_threads(),
         batch=trainer.batch_size, backbone=cfg.model.backbone, preset=a.preset,
         temperature=trainer.method.cfg.temperature, lr=cfg.train.lr,
         warmup_epochs=cfg.train.warmup_epochs, queries=args.queries or len(dataset.test),
         **{f"knn_{k}": round(v, 4) for k, v in result.items()},
         ours_minus_lightly=round(result["ours"] - result["lightly"], 4)
         if "lightly" in result else None, goal=GOAL)


if __name__ == "__main__":
    main()
