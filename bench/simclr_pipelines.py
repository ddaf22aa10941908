"""Two SimCLR training pipelines on the same images and network, and one kNN to judge them.

- :func:`ours`: the engine's run (``Trainer.train_step``): uint8 images where the trainer holds
  them, two views made batched with per-sample parameters, forward, NT-Xent, backward.
- :func:`lightly`: lightly's standard recipe, as its CIFAR-10 benchmark writes it: a torch
  ``DataLoader`` over PIL images with ``SimCLRTransform(input_size=32, cj_strength=0.5,
  gaussian_blur=0.0)`` (crop scale (0.08, 1), colour jitter 0.4/0.4/0.4/0.1 with p 0.8, grey
  0.2, flip), ``NTXentLoss()`` (temperature 0.5), the projector ``mlp(d, 512, 128)``, the
  optimiser the trainer's config names (SGD or AdamW) on every parameter, as lightly's examples
  do (ours spares biases and batch norm). Same backbone and initial weights as ours; on a GPU
  the same bf16 autocast and memory format, the batches copied from pinned memory.
- :func:`knn_accuracy`: k-nearest-neighbour top-1 on the backbone's ``h`` (Wu et al. 2018,
  https://arxiv.org/abs/1805.01978): all train images are the bank.

Used by ``bench_cifar10_cpu.py`` (the same seconds each) and ``bench_gpu.py --parity`` (the
same epochs each).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from engine.data import Dataset
from engine.eval.embed import embed_images
from engine.eval.knn import knn_top1
from engine.models import build_backbone
from engine.models.heads import mlp
from engine.train.loop import Trainer


@dataclass
class Pipeline:
    """One training pipeline: ``step(lr, progress)`` trains one batch and returns its loss;
    ``net`` embeds (``.embed``)."""

    name: str
    step: Callable[[float, float], float]
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


class Encoder(torch.nn.Module):
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


def lightly(trainer: Trainer, dataset: Dataset, channels_last: bool = False,
            workers: int = 0) -> Pipeline:
    """lightly's standard SimCLR recipe on the trainer's images, network, batch and device.
    ``workers``: the DataLoader's worker processes (0 is the fastest on 2 cores)."""
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform

    transform = SimCLRTransform(  # lightly's CIFAR-10 benchmark
        input_size=dataset.image_size, cj_strength=0.5, gaussian_blur=0.0,
        normalize={"mean": trainer.augment.mean.tolist(), "std": trainer.augment.std.tolist()},
    )
    device = trainer.device
    loader = torch.utils.data.DataLoader(
        PILImages(dataset.train.images, transform), batch_size=trainer.batch_size,
        shuffle=True, drop_last=True, num_workers=workers, persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(trainer.cfg.seed),
    )
    cfg = trainer.cfg
    torch.manual_seed(cfg.seed)  # the same initial weights as ours
    backbone = build_backbone(cfg.model.backbone, dataset.channels, dataset.image_size,
                              cfg.model.width)
    model = torch.nn.Sequential(backbone, mlp(backbone.out_dim, 512, 128)).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    criterion = NTXentLoss()  # temperature 0.5
    t = cfg.train
    optimizer = (torch.optim.SGD(model.parameters(), lr=trainer.base_lr, momentum=t.momentum,
                                 weight_decay=t.weight_decay) if t.optimizer == "sgd" else
                 torch.optim.AdamW(model.parameters(), lr=trainer.base_lr,
                                   weight_decay=t.weight_decay))
    amp = (torch.autocast(device.type, dtype=trainer.amp_dtype) if trainer.amp_dtype
           else contextlib.nullcontext())
    model.train()

    def batches():  # noqa: ANN202
        while True:
            yield from loader

    it = batches()

    def step(lr: float, progress: float) -> float:
        x0, x1 = (x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
                  for x in next(it))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with amp:
            loss = criterion(model(x0), model(x1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return Pipeline("lightly_cl" if channels_last else "lightly", step, Encoder(backbone))


def train(pipe: Pipeline, trainer: Trainer, until: Callable[[Pipeline], bool],
          progress: Callable[[Pipeline], float]) -> None:
    """Step ``pipe`` until ``until(pipe)``, on the trainer's warm-up and cosine schedule at
    ``progress(pipe)``; its seconds count the steps alone."""
    sched = trainer.schedule
    while not until(pipe):
        p = min(progress(pipe), 1.0)
        t0 = time.perf_counter()
        pipe.loss = pipe.step(sched.lr(p, pipe.steps), p)
        pipe.seconds += time.perf_counter() - t0
        pipe.steps += 1


def train_in_turns(pipes: list[Pipeline], trainer: Trainer, seconds: float, turn: float) -> None:
    """Train every pipeline for ``seconds`` of its own time, ``turn`` seconds at a time (the
    order reversed every other round, so a change in the machine's load falls on all alike);
    each follows the same schedule over its own seconds."""
    rounds = 0
    while any(p.seconds < seconds for p in pipes):
        for p in pipes if rounds % 2 == 0 else pipes[::-1]:
            end = min(seconds, p.seconds + turn)
            train(p, trainer, lambda q, end=end: q.seconds >= end, lambda q: q.seconds / seconds)
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
    """kNN top-1 of ``net``'s ``h`` on the test split (its first ``queries`` images, 0 = all):
    all train images are the bank."""
    normalise, device = trainer.augment.normalise, trainer.device
    bank = embed_images(net, dataset.train.images, normalise, device, 1024)["h"]
    test = dataset.test.images[:queries] if queries else dataset.test.images
    labels = dataset.test.labels[: len(test)]
    q = embed_images(net, test, normalise, device, 1024)["h"]
    return knn_top1(bank, dataset.train.labels, q, labels, k=k, temperature=temperature)
