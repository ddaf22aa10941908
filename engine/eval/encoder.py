"""A run's trained encoder, read back from its checkpoint, to embed images it never saw.

The augmentation studio asks questions of a finished (or checkpointed) run: where do views of
this image land, how much does rotation move ``h``? :class:`RunEncoder` rebuilds the run's
method from ``config.json``, loads ``checkpoints/last.pt`` and normalises images with the same
per-channel statistics as the trainer, so ``embed`` gives the ``h`` the run itself computes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.augment import Augmenter, resolve_views
from engine.config import RunConfig
from engine.data import Dataset, load_dataset
from engine.eval.embed import embed_images
from engine.train.loop import channel_stats


@dataclass
class RunEncoder:
    """A run's method (eval mode) with its data set, views and normalisation.

    method: the rebuilt method (its ``embed`` gives ``h``); step: the checkpoint's step (0 for
    an untrained encoder); views: the run's per-view op lists; normalise: uint8 -> float.
    """

    cfg: RunConfig
    dataset: Dataset
    method: torch.nn.Module
    views: list[list[dict[str, Any]]]
    mean: list[float]
    std: list[float]
    step: int
    device: torch.device

    @classmethod
    def build(
        cls,
        cfg: RunConfig,
        dataset: Dataset | None = None,
        state: dict[str, Any] | None = None,
        device: str = "cpu",
    ) -> RunEncoder:
        """The encoder of ``cfg`` with the weights of checkpoint ``state`` (None: as built from
        the seed, untrained)."""
        from engine.encoder.load import rebuild_method

        ds = dataset if dataset is not None else load_dataset(cfg.data)
        torch.manual_seed(cfg.seed)
        method = rebuild_method(cfg, ds.channels, ds.image_size, ds.num_classes, state)
        step = int(state.get("step", 0)) if state is not None else 0
        dev = torch.device(device)
        method = method.to(dev).eval()
        mean, std = channel_stats(ds.train.images)
        return cls(cfg, ds, method, resolve_views(cfg.augment), mean, std, step, dev)

    @classmethod
    def from_run(cls, run: Any, dataset: Dataset | None = None,
                 device: str | None = None) -> RunEncoder:
        """The encoder of a run directory (``RunDir``) at its last checkpoint, on ``device``
        (default: CUDA when there is one, else the CPU). Raises ValueError when the run has no
        checkpoint yet."""
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        from engine.train import checkpoint

        path = run.checkpoint_path()
        if path is None:
            raise ValueError(f"run {run.id} has no checkpoint yet: its encoder cannot be read "
                             "back (checkpoints are written at the end and every 2 minutes)")
        return cls.build(run.config(), dataset, checkpoint.load(path), device)

    @property
    def normaliser(self) -> Augmenter:
        """An augmenter of no ops with the run's normalisation."""
        return Augmenter([[]], self.mean, self.std)

    def augmenter(self, views: list[list[dict[str, Any]]]) -> Augmenter:
        """An augmenter of ``views`` with the run's normalisation."""
        return Augmenter(views, self.mean, self.std)

    def embed(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """``h`` (N, D) float32 of uint8 images (N, C, H, W)."""
        return embed_images(self.method, images, self.normaliser.normalise, self.device,
                            batch_size)["h"]

    def embed_normalised(
        self, make: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
        batch_size: int = 512,
    ) -> np.ndarray:
        """``h`` (N, D) of ``make(batch)`` for uint8 batches of ``images``; ``make`` returns
        normalised float images (an augmented view)."""
        return embed_images(self.method, images, make, self.device, batch_size)["h"]
