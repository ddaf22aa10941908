"""Contrastive losses with a softmax over candidates: SimCLR, MoCo, SupCon.

The numerics every loss shares are in :mod:`engine.losses`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.losses.numerics import (
    UNLABELLED,
    at_least_float32,
    check_pair,
    mask_self,
    masked_mean,
)


@at_least_float32
def info_nce(z0: Tensor, z1: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent, the normalised temperature-scaled cross-entropy loss of SimCLR.

    Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
    https://arxiv.org/abs/2002.05709 (eq. 1).

    The two views are stacked into ``2B`` embeddings. Each one is an anchor whose positive is the
    other view of the same image and whose negatives are the other ``2B - 2`` embeddings (itself
    excluded). Similarity is cosine similarity divided by ``temperature``.

    Args:
        z0: (B, D) projections of the first views.
        z1: (B, D) projections of the second views; row ``i`` pairs with ``z0[i]``.
        temperature: softmax temperature tau > 0 (SimCLR: 0.5 at batch 256-512, 0.1 for long runs).

    Returns:
        Scalar: mean over the ``2B`` anchors of ``-log softmax(positive)``.

    Numerical notes:
        Inputs are L2-normalised here (``F.normalize`` with eps 1e-12), so their scale is
        irrelevant. Computed with ``cross_entropy`` on the (2B, 2B) logit matrix whose diagonal
        is masked, in float32 even under autocast. Analytic anchors: if all ``2B`` embeddings are
        identical the loss is ``log(2B - 1)``; if the pairs are aligned and mutually orthogonal it
        is ``log(1 + (2B - 2) exp(-1/tau))``, which goes to 0 as tau goes to 0. With ``B = 1``
        there are no negatives and the loss is 0. Symmetric in ``z0, z1``.
    """
    check_pair(z0, z1)
    b = z0.shape[0]
    z = F.normalize(torch.cat([z0, z1]), dim=1)  # (2B, D)
    logits = mask_self(z @ z.T / temperature)  # (2B, 2B)
    # Anchor i in the first half pairs with i + B, and vice versa.
    targets = torch.arange(2 * b, device=z.device).roll(b)  # (2B,)
    return F.cross_entropy(logits, targets)


@at_least_float32
def moco_logits(
    q: Tensor, k: Tensor, queue: Tensor | None, temperature: float
) -> tuple[Tensor, Tensor]:
    """Logits and labels of MoCo's InfoNCE: the positive key first, then the negatives.

    He et al. 2019, "Momentum Contrast for Unsupervised Visual Representation Learning",
    https://arxiv.org/abs/1911.05722 (Algorithm 1); MoCo v2, https://arxiv.org/abs/2003.04297.

    Args:
        q: (B, D) queries from the online encoder.
        k: (B, D) keys from the momentum encoder; ``k[i]`` is the positive of ``q[i]``.
        queue: (K, D) negative keys from earlier batches, or ``None`` to use the other keys of
            the batch as negatives (each query then has ``B - 1`` negatives, as in MoCo v3).
        temperature: tau > 0 (MoCo v1: 0.07, v2: 0.2).

    Returns:
        ``(logits, labels)``: logits (B, 1 + K), or (B, B) when ``queue`` is None, with the
        positive in column 0; labels (B,) int64, all zero.

    Numerical notes:
        ``q``, ``k`` and ``queue`` are L2-normalised here (idempotent for a queue of stored,
        already normalised keys). ``k`` and ``queue`` are detached: keys are constants in MoCo,
        gradients reach only the query encoder.
    """
    check_pair(q, k, "q, k")
    q = F.normalize(q, dim=1)
    k = F.normalize(k.detach(), dim=1)
    l_pos = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
    if queue is None:
        b = q.shape[0]
        off_diag = ~torch.eye(b, dtype=torch.bool, device=q.device)
        l_neg = (q @ k.T)[off_diag].view(b, b - 1)  # (B, B-1)
    else:
        if queue.ndim != 2 or queue.shape[1] != q.shape[1]:
            raise ValueError(f"queue must have shape (K, {q.shape[1]}); got {tuple(queue.shape)}")
        l_neg = q @ F.normalize(queue.detach(), dim=1).T  # (B, K)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return logits, labels


@at_least_float32
def info_nce_logits(q: Tensor, k: Tensor, queue: Tensor | None, temperature: float) -> Tensor:
    """MoCo's InfoNCE loss: cross-entropy of :func:`moco_logits` with the positive at index 0.

    He et al. 2019, https://arxiv.org/abs/1911.05722 (eq. 1); MoCo v2,
    https://arxiv.org/abs/2003.04297.

    Args:
        q: (B, D) queries (receive gradients).
        k: (B, D) positive keys (detached inside).
        queue: (K, D) negative keys (detached inside), or ``None`` for in-batch negatives.
        temperature: tau > 0.

    Returns:
        Scalar, mean over the B queries. If every key and negative equals the query the
        value is ``log(1 + K)``.
    """
    logits, labels = moco_logits(q, k, queue, temperature)
    return F.cross_entropy(logits, labels)


@at_least_float32
def supcon(
    z: Tensor,
    labels: Tensor,
    temperature: float = 0.1,
    base_temperature: float | None = None,
) -> Tensor:
    """Supervised contrastive loss, the L_out form (mean over positives outside the log).

    Khosla et al. 2020, "Supervised Contrastive Learning", https://arxiv.org/abs/2004.11362
    (eq. 2); reference code https://github.com/HobbitLong/SupContrast.

    All ``B * V`` embeddings are anchors. For anchor ``i`` the candidates ``A(i)`` are all other
    embeddings, and the positives ``P(i)`` are those with the same label (including the other
    views of the same sample). Per anchor:
    ``-1/|P(i)| * sum_{p in P(i)} log softmax_{a in A(i)}(z_i . z_a / tau)[p]``.

    Args:
        z: (B, V, D) projections, V views per sample; or (N, D), read as V = 1.
        labels: (B,) integer class labels. ``-1`` marks an unlabelled sample: it is its own class,
            so its only positives are its own other views (the SimCLR case), and it is a negative
            for everything else, including other unlabelled samples.
        temperature: tau > 0 (paper: 0.1 for SupCon on CIFAR; its code defaults to 0.07).
        base_temperature: when given, the loss is multiplied by ``temperature / base_temperature``
            as the reference code does (its defaults are both 0.07, a factor of 1). ``None``
            means no rescaling.

    Returns:
        Scalar: mean over anchors that have at least one positive.

    Numerical notes:
        Embeddings are L2-normalised here. Anchors without any positive (a singleton class with
        V = 1) are excluded from the mean; the reference code instead counts them as zeros in
        the mean, which only rescales the loss. With no valid anchor at all the result is 0 with
        a graph. When every sample is its own class (distinct labels, or all ``-1``) and V = 2,
        each anchor has exactly one positive and the candidates are the other ``2B - 1``
        embeddings, so ``supcon(stack([z0, z1], 1), arange(B), tau) == info_nce(z0, z1, tau)``
        exactly (L_out and L_in coincide with one positive). A batch of a single class is finite
        (no negatives: the loss only pulls views together); its minimum is ``log(BV - 1)``.
    """
    if z.ndim == 2:
        z = z[:, None, :]
    if z.ndim != 3 or labels.shape != (z.shape[0],):
        raise ValueError(
            f"supcon expects z (B, V, D) or (N, D) and labels (B,); got z {tuple(z.shape)} and "
            f"labels {tuple(labels.shape)}"
        )
    b, v, _ = z.shape
    labels = labels.to(z.device)
    # View-major order, like the reference code: rows 0..B-1 are view 0, and so on.
    feats = F.normalize(z.transpose(0, 1).reshape(b * v, -1), dim=1)  # (BV, D)
    sample = torch.arange(b, device=z.device).repeat(v)  # (BV,)
    lab = labels.repeat(v)  # (BV,)
    same_sample = sample[:, None] == sample[None, :]
    same_class = (lab[:, None] == lab[None, :]) & (lab[:, None] != UNLABELLED)
    self_mask = torch.eye(b * v, dtype=torch.bool, device=z.device)
    positive = (same_sample | same_class) & ~self_mask  # (BV, BV)

    log_prob = F.log_softmax(mask_self(feats @ feats.T / temperature), dim=1)  # (BV, BV)
    n_pos = positive.sum(dim=1)  # (BV,)
    # where(), not a product: the masked diagonal of log_prob is huge and negative.
    pos_log_prob = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -pos_log_prob / n_pos.clamp_min(1)  # (BV,)
    loss = masked_mean(per_anchor, n_pos > 0)
    if base_temperature is not None:
        loss = loss * (temperature / base_temperature)
    return loss
