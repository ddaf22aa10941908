"""Supervised cross-entropy that skips unlabelled samples.

The numerics every loss shares are in :mod:`engine.losses`."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from engine.losses.numerics import (
    UNLABELLED,
    at_least_float32,
)


@at_least_float32
def cross_entropy(
    logits: Tensor, labels: Tensor, ignore_index: int = UNLABELLED, label_smoothing: float = 0.0
) -> Tensor:
    """Cross-entropy over the labelled samples; 0 (with a graph) when none is labelled.

    ``F.cross_entropy`` returns NaN when every target equals ``ignore_index`` (a mean over zero
    samples). Semi-supervised batches (FixMatch, SESEMI, a mostly unlabelled STL-10 batch) hit
    that case, so this wrapper sums the per-sample losses and divides by ``max(count, 1)``.

    Args:
        logits: (B, C) unnormalised class scores.
        labels: (B,) int64 class indices in ``[0, C)``, or ``ignore_index`` for unlabelled.
        ignore_index: label value to skip (default ``-1``, the engine's "unlabelled").
        label_smoothing: epsilon of label smoothing (Szegedy et al. 2016,
            https://arxiv.org/abs/1512.00567); 0 is plain cross-entropy.

    Returns:
        Scalar: mean over labelled samples; exactly 0 with zero gradients when none is.
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"expects logits (B, C) and labels (B,); got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    labels = labels.to(logits.device)
    per_sample = F.cross_entropy(
        logits, labels, ignore_index=ignore_index, reduction="none",
        label_smoothing=label_smoothing,
    )
    return per_sample.sum() / (labels != ignore_index).sum().clamp_min(1)
