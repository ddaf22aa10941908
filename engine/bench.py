"""Timing training steps: ``python -m engine bench``.

Times complete steps (augment every view on the device, forward, backward, optimiser step)
and, for comparison, the model-only step on ready tensors (same model, batch and loss, no
augmentation): the limit on this machine. The two are measured in alternation, round after
round, and each reports its median, so a shared machine's changing load falls on both alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from engine.config import RunConfig
from engine.data import Dataset
from engine.train.loop import Trainer

#: runs ``n`` steps and returns their wall time in seconds
StepTimer = Callable[[int], float]


class _Ready:
    """Stands in for the Augmenter: returns pre-made views, so only the model is timed."""

    def __init__(self, views: list[torch.Tensor], normalise: Any) -> None:
        self.views = views
        self.normalise = normalise

    def view(self, x: torch.Tensor, i: int, generator: torch.Generator) -> torch.Tensor:
        return self.views[i % len(self.views)]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_timer(trainer: Trainer, model_only: bool = False) -> StepTimer:
    """A timer of ``trainer``'s full training step (``Trainer.train_step`` on its own batches),
    or with ``model_only`` of the same step on two ready views (no augmentation)."""
    batches = trainer.batches()
    ready = None
    if model_only:
        _, x = next(batches)
        views = [trainer.augment.view(x, i, trainer.generator) for i in range(2)]
        ready = _Ready(views, trainer.augment.normalise)

    def run(n: int) -> float:
        real = trainer.augment
        trainer.augment = ready or real
        try:
            sync(trainer.device)
            t0 = time.perf_counter()
            for _ in range(n):
                idx, x = next(batches)
                out = trainer.train_step(idx, trainer.base_lr, 0.0, x)
            float(out.loss.detach())  # waits for the last step
            sync(trainer.device)
            return time.perf_counter() - t0
        finally:
            trainer.augment = real

    return run


def interleave(
    timers: dict[str, StepTimer], rounds: int, steps: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Seconds per step of each timer in every round. After ``warmup`` untimed steps each,
    every round runs ``steps`` steps of each timer in turn, the order reversed every other
    round so that a drift in the machine's load does not favour whoever goes first."""
    for timer in timers.values():
        if warmup:
            timer(warmup)
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for r in range(rounds):
        names = list(timers) if r % 2 == 0 else list(reversed(timers))
        for name in names:
            samples[name].append(timers[name](steps) / steps)
    return samples


def bench(
    cfg: RunConfig,
    steps: int = 20,
    warmup: int = 5,
    model_only: bool = True,
    dataset: Dataset | None = None,
    rounds: int = 5,
) -> dict[str, Any]:
    """Images per second of the full step (and of the model-only step) for ``cfg``: medians
    over ``rounds`` alternating rounds of ``steps / rounds`` steps each."""
    cfg = cfg.with_overrides({"train.epochs": max(cfg.train.epochs, 1)})
    trainer = Trainer(cfg, dataset)
    timers = {"full": step_timer(trainer)}
    if model_only:
        timers["model_only"] = step_timer(trainer, model_only=True)
    rounds = max(1, min(rounds, steps))
    samples = interleave(timers, rounds, max(1, steps // rounds), warmup)
    rate = {k: trainer.batch_size / statistics.median(v) for k, v in samples.items()}
    result: dict[str, Any] = {
        "method": cfg.method.name,
        "backbone": cfg.model.backbone,
        "data": cfg.data.name,
        "image_size": trainer.dataset.image_size,
        "batch_size": trainer.batch_size,
        "device": str(trainer.device),
        "device_name": torch.cuda.get_device_name(trainer.device)
        if trainer.device.type == "cuda" else "cpu",
        "precision": str(trainer.amp_dtype or "fp32").replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "resident": trainer.resident,
        "steps": rounds * max(1, steps // rounds),
        "rounds": rounds,
        "images_per_s": rate["full"],
    }
    if model_only:
        result["model_only_images_per_s"] = rate["model_only"]
        result["fraction_of_model_only"] = rate["full"] / rate["model_only"]
    return result
