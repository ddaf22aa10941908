"""Labels for metric losses over the two views of a batch.

Margin and triplet losses compare embeddings by label. Each image contributes two views; a
labelled image keeps its class, an unlabelled one gets an identity of its own, so its only
positive is its other view and everything else is a negative (the self-supervised case).
"""

from __future__ import annotations

import torch


def view_labels(y: torch.Tensor, num_classes: int, use_labels: bool = True) -> torch.Tensor:
    """Labels (2B,) for ``cat([z0, z1])`` from batch labels y (B,), -1 = unlabelled.

    Unlabelled images (or every image when ``use_labels`` is False) get the distinct label
    ``num_classes + i``, which no class uses.
    """
    own = num_classes + torch.arange(y.shape[0], device=y.device)
    ids = torch.where(y >= 0, y, own) if use_labels else own
    return ids.repeat(2)
