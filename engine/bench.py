"""Timing training steps: ``python -m engine bench``.

Times complete steps (augment every view on the device, forward, backward, optimiser step)
after a warm-up, and, for comparison, the model-only step on ready tensors (same model,
batch and loss, no augmentation): the limit on this machine.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from engine.config import RunConfig
from engine.data import Dataset
from engine.train.loop import Trainer


class _Ready:
    """Stands in for the Augmenter: returns pre-made views, so only the model is timed."""

    def __init__(self, views: list[torch.Tensor], normalise: Any) -> None:
        self.views = views
        self.normalise = normalise

    def view(self, x: torch.Tensor, i: int, generator: torch.Generator) -> torch.Tensor:
        return self.views[i % len(self.views)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(trainer: Trainer, steps: int, warmup: int, model_only: bool = False) -> float:
    """Source images per second over ``steps`` training steps after ``warmup`` steps."""
    b = trainer.batch_size
    g = torch.Generator().manual_seed(0)
    batches = [torch.randperm(len(trainer.dataset.train), generator=g)[:b] for _ in range(4)]
    real_augment = trainer.augment
    if model_only:
        x = trainer.images[batches[0].to(trainer.images.device)].to(trainer.device)
        views = [real_augment.view(x, i, trainer.generator) for i in range(2)]
        trainer.augment = _Ready(views, real_augment.normalise)
    try:
        for i in range(warmup):
            trainer.train_step(batches[i % 4], trainer.base_lr, 0.0)
        _sync(trainer.device)
        t0 = time.perf_counter()
        for i in range(steps):
            out = trainer.train_step(batches[i % 4], trainer.base_lr, 0.0)
        float(out.loss)  # waits for the last step
        _sync(trainer.device)
        return steps * b / (time.perf_counter() - t0)
    finally:
        trainer.augment = real_augment


def bench(
    cfg: RunConfig,
    steps: int = 20,
    warmup: int = 5,
    model_only: bool = True,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Images per second of the full step (and of the model-only step) for ``cfg``."""
    cfg = cfg.with_overrides({"train.epochs": max(cfg.train.epochs, 1)})
    trainer = Trainer(cfg, dataset)
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
        "steps": steps,
        "images_per_s": time_steps(trainer, steps, warmup),
    }
    if model_only:
        result["model_only_images_per_s"] = time_steps(trainer, steps, warmup, model_only=True)
        result["fraction_of_model_only"] = (
            result["images_per_s"] / result["model_only_images_per_s"]
        )
    return result
