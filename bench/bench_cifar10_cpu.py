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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split
import torch  # noqa: E402

from engine.cli import parse_sets  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.data import Dataset, load_dataset  # noqa: E402
from engine.eval.embed import embed_images  # noqa: E402
from engine.eval.knn import knn_top1  # noqa: E402
from engine.models import build_backbone  # noqa: E402
from engine.models.heads import mlp  # noqa: E402
from engine.train.loop import Trainer  # noqa: E402

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


@dataclass
class Pipeline:
    """One training pipeline: ``step(lr)`` trains one batch; ``net`` embeds (``.embed``)."""

    name: str
    step: object  # (lr: float, progress: float) -> float, the step's loss
    net: torch.nn.Module
    seconds: float = 0.0
    steps: int = 0
    loss: float = float("nan")


def ours(trainer: Trainer, name: str = "ours") -> Pipeline:
    batches = trainer.batches()

    def step(lr: float, progress: float) -> float:
        idx, x = next(batches)
        out = trainer.train_step(idx, lr, progress, x)
        trainer.step += 1
        return float(out.loss.detach())

    return Pipeline(name, step, trainer.method)


class _Encoder(torch.nn.Module):
    """A backbone with the ``embed`` of ``engine.methods.Method``: ``{"h": (B, D)}``."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"h": self.backbone(x)}


class PILImages(torch.utils.data.Dataset):
    """uint8 images (N, C, H, W) as PIL images through ``transform``: a DataLoader's input."""

    def __init__(self, images: torch.Tensor, transform) -> None:  # noqa: ANN001
        from PIL import Image

        self.images = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):  # noqa: ANN204
        return self.transform(self.images[i])


def lightly(trainer: Trainer, dataset: Dataset, channels_last: bool = False) -> Pipeline:
    """lightly's standard SimCLR recipe on the same images, network, batch and optimiser."""
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform

    transform = SimCLRTransform(  # lightly's CIFAR-10 benchmark
        input_size=dataset.image_size, cj_strength=0.5, gaussian_blur=0.0,
        normalize={"mean": trainer.augment.mean.tolist(), "std": trainer.augment.std.tolist()},
    )
    loader = torch.utils.data.DataLoader(
        PILImages(dataset.train.images, transform), batch_size=trainer.batch_size,
        shuffle=True, drop_last=True, num_workers=0,
        generator=torch.Generator().manual_seed(trainer.cfg.seed),
    )
    cfg = trainer.cfg
    torch.manual_seed(cfg.seed)  # the same initial weights as ours
    backbone = build_backbone(cfg.model.backbone, dataset.channels, dataset.image_size,
                              cfg.model.width)
    model = torch.nn.Sequential(backbone, mlp(backbone.out_dim, 512, 128))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = NTXentLoss()  # temperature 0.5
    optimizer = torch.optim.AdamW(model.parameters(), lr=trainer.base_lr,
                                  weight_decay=cfg.train.weight_decay)
    model.train()

    def batches():  # noqa: ANN202
        while True:
            yield from loader

    it = batches()

    def step(lr: float, progress: float) -> float:
        x0, x1 = next(it)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = criterion(model(x0), model(x1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return Pipeline("lightly_cl" if channels_last else "lightly", step, _Encoder(backbone))


def train_in_turns(pipes: list[Pipeline], trainer: Trainer, seconds: float, turn: float) -> None:
    """Train every pipeline for ``seconds`` of its own time, ``turn`` seconds at a time; each
    follows the same warm-up and cosine schedule over its own seconds and steps."""
    sched = trainer.schedule
    rounds = 0
    while any(p.seconds < seconds for p in pipes):
        order = pipes if rounds % 2 == 0 else pipes[::-1]
        for p in order:
            until = min(seconds, p.seconds + turn)
            while p.seconds < until:
                progress = min(p.seconds / seconds, 1.0)
                t0 = time.perf_counter()
                p.loss = p.step(sched.lr(progress, p.steps), progress)
                p.seconds += time.perf_counter() - t0
                p.steps += 1
        rounds += 1
        print(" | ".join(f"{p.name} {p.seconds:.0f} s, {p.steps} steps, loss {p.loss:.3f}"
                         for p in pipes), file=sys.stderr, flush=True)


@torch.no_grad()
def batch_norm_statistics(net: torch.nn.Module, images: torch.Tensor, normalise,  # noqa: ANN001
                          batches: int = 20, batch_size: int = 512) -> None:
    """Set every batch norm's running mean and variance to their average over ``batches``
    batches of ``images`` (N, C, H, W) uint8, the weights untouched."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average
    net.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(batches):
        idx = torch.randint(len(images), (batch_size,), generator=g)
        net.backbone(normalise(images[idx]))
    net.eval()


def knn_accuracy(net: torch.nn.Module, dataset: Dataset, trainer: Trainer, queries: int,
                 k: int, temperature: float) -> float:
    """kNN top-1 of ``net``'s ``h`` on the test split: all train images are the bank."""
    normalise, device = trainer.augment.normalise, trainer.device
    bank = embed_images(net, dataset.train.images, normalise, device, 1024)["h"]
    test = dataset.test.images[:queries] if queries else dataset.test.images
    labels = dataset.test.labels[: len(test)]
    q = embed_images(net, test, normalise, device, 1024)["h"]
    return knn_top1(bank, dataset.train.labels, q, labels, k=k, temperature=temperature)


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
    random = _Encoder(copy.deepcopy(trainer.method.backbone))
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
    pixels = _Encoder(build_backbone("pixels", dataset.channels, dataset.image_size))
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
