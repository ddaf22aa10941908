"""Embedding extraction: run a method's ``embed`` over uint8 images in batches."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """``module`` in eval mode inside the block, its own mode restored after (even on error)."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@torch.no_grad()
def embed_images(
    method: torch.nn.Module,
    images: torch.Tensor,
    normalise,  # noqa: ANN001  (Augmenter.normalise: uint8 (B,C,H,W) -> float)
    device: torch.device,
    batch_size: int = 512,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, np.ndarray]:
    """Features of ``images`` (N, C, H, W) uint8 on any device: ``{"h": (N, D), "z": (N, d)}``
    as float32 numpy arrays (``z`` only where the method has a projector).

    The method is put in eval mode for the pass and restored afterwards.
    """
    chunks: dict[str, list[np.ndarray]] = {}
    amp = (
        torch.autocast(device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    with eval_mode(method):
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device, non_blocking=True)
            with amp:
                out = method.embed(normalise(x))
            for key, value in out.items():
                chunks.setdefault(key, []).append(value.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in chunks.items()}
