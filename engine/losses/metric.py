"""Metric learning losses on distances: margin contrastive pairs, triplets.

The numerics every loss shares are in :mod:`engine.losses`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.losses.numerics import (
    DIST_EPS,
    UNLABELLED,
    at_least_float32,
    check_pair,
    masked_mean,
    pairwise_distances,
)


@at_least_float32
def margin_contrastive(z0: Tensor, z1: Tensor, same: Tensor, margin: float = 1.0) -> Tensor:
    """Margin contrastive loss on given pairs (the original "contrastive loss").

    Hadsell, Chopra & LeCun 2006, "Dimensionality Reduction by Learning an Invariant Mapping",
    https://doi.org/10.1109/CVPR.2006.100 (eq. 4).

    For pair i with Euclidean distance ``d_i = ||z0[i] - z1[i]||``:
    ``L_i = 1/2 d_i^2`` if ``same[i]`` else ``1/2 max(0, margin - d_i)^2``; the loss is the mean
    over pairs. The factor 1/2 is the paper's.

    Args:
        z0: (B, D) first embeddings of each pair.
        z1: (B, D) second embeddings of each pair.
        same: (B,) 1/True for a similar pair, 0/False for a dissimilar one (bool, int or float).
        margin: m > 0; dissimilar pairs farther apart than m cost nothing.

    Returns:
        Scalar. Symmetric in ``z0, z1``.

    Numerical notes:
        Embeddings are **not** normalised here: the margin is in the units of the embeddings the
        caller passes (normalise first to work on the unit sphere, where d <= 2). The similar
        term uses the squared distance directly; the dissimilar term takes the square root of
        the squared distance clamped at 1e-12, so identical dissimilar points have a finite
        (zero) gradient instead of NaN.
    """
    check_pair(z0, z1)
    if same.shape != (z0.shape[0],):
        raise ValueError(f"same must have shape ({z0.shape[0]},); got {tuple(same.shape)}")
    same_f = same.to(device=z0.device, dtype=z0.dtype)
    sq = (z0 - z1).pow(2).sum(dim=1)  # (B,)
    d = sq.clamp_min(DIST_EPS).sqrt()
    per_pair = same_f * sq + (1.0 - same_f) * F.relu(margin - d).pow(2)
    return 0.5 * per_pair.mean()


@at_least_float32
def pairwise_margin_contrastive(z: Tensor, labels: Tensor, margin: float = 1.0) -> Tensor:
    """Margin contrastive loss over all pairs of a labelled batch.

    Hadsell, Chopra & LeCun 2006, https://doi.org/10.1109/CVPR.2006.100 (eq. 4), applied to
    every unordered pair ``i < j`` of the batch, with ``same = labels[i] == labels[j]``.

    Args:
        z: (B, D) embeddings (not normalised here; see :func:`margin_contrastive`).
        labels: (B,) integer labels; pairs involving a ``-1`` (unlabelled) sample are ignored.
        margin: m >= 0, in the units of ``z`` (0: only similar pairs count, a loss that
            every embedding collapsed to one point minimises).

    Returns:
        Scalar: mean of ``1/2 d^2`` (same class) or ``1/2 relu(m - d)^2`` over valid
        pairs; 0 with a graph when there is no valid pair. Each pair counts once. With many
        classes most pairs are dissimilar; no rebalancing is done.

    Numerical notes:
        Distances come from the Gram matrix (``|a|^2 + |b|^2 - 2 a.b``, clamped at 0), so
        memory is O(B^2), not O(B^2 D); same clamp-before-sqrt as :func:`margin_contrastive`.
    """
    if z.ndim != 2 or labels.shape != (z.shape[0],):
        raise ValueError(
            f"expects z (B, D) and labels (B,); got {tuple(z.shape)} and {tuple(labels.shape)}"
        )
    labels = labels.to(z.device)
    sq = pairwise_distances(z, squared=True)  # (B, B)
    d = sq.clamp_min(DIST_EPS).sqrt()
    labelled = labels != UNLABELLED
    upper = torch.ones_like(sq, dtype=torch.bool).triu(diagonal=1)
    valid = upper & labelled[:, None] & labelled[None, :]
    same = labels[:, None] == labels[None, :]
    per_pair = 0.5 * torch.where(same, sq, F.relu(margin - d).pow(2))
    return masked_mean(per_pair, valid)


def _triplet_pairs(z: Tensor, labels: Tensor, squared: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Distances (B, B) and the positive (same label, not itself) and negative (other label)
    masks (B, B) of the triplet losses; unlabelled (``-1``) samples are in neither."""
    if z.ndim != 2 or labels.shape != (z.shape[0],):
        raise ValueError(
            f"expects z (B, D) and labels (B,); got {tuple(z.shape)} and {tuple(labels.shape)}"
        )
    labels = labels.to(z.device)
    labelled = labels != UNLABELLED
    both = labelled[:, None] & labelled[None, :]
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
    return pairwise_distances(z, squared=squared), both & same & ~eye, both & ~same


@at_least_float32
def triplet_batch_hard(
    z: Tensor, labels: Tensor, margin: float = 0.2, squared: bool = False
) -> Tensor:
    """Triplet loss with batch-hard mining.

    Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss for Person Re-Identification",
    https://arxiv.org/abs/1703.07737 (eq. 5).

    For each anchor: the farthest positive (same label, not itself) and the nearest negative
    (different label) in the batch; ``L_a = relu(d_ap - d_an + margin)``.

    Args:
        z: (B, D) embeddings (not normalised here: the margin is in the units of ``z``).
        labels: (B,) integer labels; ``-1`` (unlabelled) samples are neither anchors, positives
            nor negatives.
        margin: m >= 0.
        squared: use squared Euclidean distances instead of distances.

    Returns:
        Scalar: mean over anchors that have at least one positive and one negative;
        0 with a graph when there are none (e.g. a batch of one class, or only singletons).

    Numerical notes:
        Gram-matrix distances clamped at 0 (and at 1e-12 before the square root), so identical
        points give finite gradients.
    """
    dist, positive, negative = _triplet_pairs(z, labels, squared)
    # Distances are >= 0, so filling non-positives with 0 leaves the max over positives intact.
    d_ap = torch.where(positive, dist, torch.zeros_like(dist)).amax(dim=1)  # (B,)
    d_an = torch.where(negative, dist, torch.full_like(dist, float("inf"))).amin(dim=1)  # (B,)
    valid = positive.any(dim=1) & negative.any(dim=1)
    d_an = torch.where(valid, d_an, torch.zeros_like(d_an))  # no inf in the kept graph
    return masked_mean(F.relu(d_ap - d_an + margin), valid)


_CUBE_ENTRIES = 2**24  # largest (anchors, positives, negatives) block built at once


@at_least_float32
def triplet_batch_all(
    z: Tensor, labels: Tensor, margin: float = 0.2, squared: bool = False
) -> Tensor:
    """Triplet loss over every valid triplet in the batch, averaged over the active ones.

    Hermans, Beyer & Leibe 2017, https://arxiv.org/abs/1703.07737 ("Batch All", averaged over
    the non-zero terms): ``L = sum_{a,p,n} relu(d_ap - d_an + margin) / #{terms > 0}`` over
    anchors a, positives p (same label, p != a) and negatives n (other label). Every triplet
    contributes; from a fresh network it does not collapse the embedding to a point the way
    batch-hard mining can (BENCHMARKS.md, "Methods on shapes").

    Args:
        z: (B, D) embeddings.
        labels: (B,) integer labels; ``-1`` (unlabelled) samples take no part.
        margin: m >= 0.
        squared: use squared Euclidean distances instead of distances.

    Returns:
        Scalar; 0 with a graph when no triplet violates the margin (or none exists).

    Numerical notes:
        Only each anchor's positives enter the (a, p, n) cube, (B, K, B) with K the largest
        number of positives of an anchor, built for a chunk of anchors at a time (at most
        ``_CUBE_ENTRIES`` entries), so memory stays bounded for large batches. Finding K costs
        one host sync.
    """
    b = z.shape[0]
    dist, positive, negative = _triplet_pairs(z, labels, squared)
    inf = torch.full_like(dist, float("inf"))
    d_n = torch.where(negative, dist, inf)  # (B, B): +inf where n is no negative
    # Each anchor's positives first (K = the most any anchor has), -inf padding after them.
    k = max(1, int(positive.sum(dim=1).max()))
    d_p = torch.where(positive, dist, -inf).topk(k, dim=1).values  # (B, K)
    total, active = z.new_zeros(()), z.new_zeros((), dtype=torch.long)
    chunk = max(1, _CUBE_ENTRIES // max(1, k * b))
    for a in torch.arange(b, device=z.device).split(chunk):
        # d_ap - d_an + m; an invalid p or n gives -inf, so relu drops it (never inf - inf).
        terms = (d_p[a, :, None] - d_n[a, None, :]).add_(margin).clamp_(min=0)  # (A, K, B)
        total = total + terms.sum()
        active = active + (terms > 0).sum()
    return total / active.clamp_min(1)
