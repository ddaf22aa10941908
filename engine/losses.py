"""Loss functions for self-supervised, contrastive and metric learning.

Every loss is a pure function of tensors: no state, no parameters, no memory bank (MoCo's queue is
passed in by its method). Shapes use ``B`` for the batch, ``D`` for the embedding width, ``V`` for
views per sample and ``K`` for queue length.

Numerics shared by all functions:

- Half-precision inputs (bf16, fp16) are cast to float32 and autocast is switched off inside
  each loss, so a loss called in a bf16/fp16 autocast region computes its matmuls, norms and
  log-sum-exps in float32 and returns a float32 scalar. float64 inputs stay float64 (the tests
  compare against references in double precision). Gradients flow back in the inputs' dtype.
- Softmax-type losses go through ``log_softmax``/``cross_entropy`` (log-sum-exp with the maximum
  subtracted), never ``exp`` then ``log``.
- Losses that average over a data-dependent set (anchors with a positive, labelled samples,
  valid pairs) divide by ``max(count, 1)``: when the set is empty they return an exact 0 that is
  still connected to the graph, so ``backward()`` works and gives zero gradients. None of them
  syncs the host with the device to find that out.
- Label ``-1`` means "unlabelled" throughout the engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "barlow_twins",
    "byol_loss",
    "cross_entropy",
    "info_nce",
    "info_nce_logits",
    "margin_contrastive",
    "moco_logits",
    "negative_cosine",
    "pairwise_margin_contrastive",
    "supcon",
    "triplet_batch_all",
    "triplet_batch_hard",
    "vicreg",
    "vicreg_terms",
]

UNLABELLED = -1
# Clamp for squared distances before sqrt: d sqrt(x)/dx is infinite at 0 (identical points).
_DIST_EPS = 1e-12

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _at_least_float32(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with autocast off and its half-precision tensor arguments cast to float32."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        def cast(x: object) -> object:
            if isinstance(x, Tensor) and x.is_floating_point() and x.element_size() < 4:
                return x.float()
            return x

        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        device = tensors[0].device if tensors else torch.device("cpu")
        with torch.autocast(device_type=device.type, enabled=False):
            cast_args = tuple(cast(a) for a in args)
            cast_kwargs = {k: cast(v) for k, v in kwargs.items()}
            return fn(*cast_args, **cast_kwargs)  # type: ignore[arg-type]

    return wrapper


def _check_pair(a: Tensor, b: Tensor, names: str = "z0, z1") -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"{names} must both have shape (B, D); got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _mask_self(logits: Tensor) -> Tensor:
    """Remove the diagonal from a square logit matrix (finite fill, so even an all-masked row
    has a finite log-sum-exp and a finite gradient)."""
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    return logits.masked_fill(eye, torch.finfo(logits.dtype).min)


def _pairwise_distances(z: Tensor, squared: bool) -> Tensor:
    """Euclidean distance matrix (B, B) via the Gram matrix, clamped to stay differentiable."""
    sq_norm = (z * z).sum(dim=1)  # (B,)
    sq = (sq_norm[:, None] + sq_norm[None, :] - 2.0 * z @ z.T).clamp_min(0.0)  # (B, B)
    if squared:
        return sq
    return sq.clamp_min(_DIST_EPS).sqrt()


def _masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``values`` where ``valid``; exactly 0 (with grad) when nothing is valid."""
    total = torch.where(valid, values, torch.zeros_like(values)).sum()
    return total / valid.sum().clamp_min(1)


# --------------------------------------------------------------------------------------------
# Contrastive losses with a softmax over candidates
# --------------------------------------------------------------------------------------------


@_at_least_float32
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
    _check_pair(z0, z1)
    b = z0.shape[0]
    z = F.normalize(torch.cat([z0, z1]), dim=1)  # (2B, D)
    logits = _mask_self(z @ z.T / temperature)  # (2B, 2B)
    # Anchor i in the first half pairs with i + B, and vice versa.
    targets = torch.arange(2 * b, device=z.device).roll(b)  # (2B,)
    return F.cross_entropy(logits, targets)


@_at_least_float32
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
    _check_pair(q, k, "q, k")
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


@_at_least_float32
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


@_at_least_float32
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

    log_prob = F.log_softmax(_mask_self(feats @ feats.T / temperature), dim=1)  # (BV, BV)
    n_pos = positive.sum(dim=1)  # (BV,)
    # where(), not a product: the masked diagonal of log_prob is huge and negative.
    pos_log_prob = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -pos_log_prob / n_pos.clamp_min(1)  # (BV,)
    loss = _masked_mean(per_anchor, n_pos > 0)
    if base_temperature is not None:
        loss = loss * (temperature / base_temperature)
    return loss


# --------------------------------------------------------------------------------------------
# Non-contrastive (bootstrap / redundancy reduction) losses
# --------------------------------------------------------------------------------------------


@_at_least_float32
def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """SimSiam's D(p, z) = -cos(p, stopgrad(z)), averaged over the batch.

    Chen & He 2020, "Exploring Simple Siamese Representation Learning",
    https://arxiv.org/abs/2011.10566 (eq. 1, 3 and Algorithm 1).

    Args:
        p: (B, D) predictions of one view (receive gradients).
        z: (B, D) projections of the other view; **detached here**, the stop-gradient that keeps
            SimSiam from collapsing.

    Returns:
        Scalar in [-1, 1]; -1 when ``p`` and ``z`` point the same way.

    Numerical notes:
        ``F.cosine_similarity`` with eps 1e-8 on the norms, so a zero vector gives 0, not NaN.
        The symmetric SimSiam loss is ``0.5 * (D(p0, z1) + D(p1, z0))``, built by the method.
    """
    _check_pair(p, z, "p, z")
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


@_at_least_float32
def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """BYOL's normalised mean squared error, ``||p/|p| - z/|z| ||^2 = 2 - 2 cos(p, z)``.

    Grill et al. 2020, "Bootstrap Your Own Latent", https://arxiv.org/abs/2006.07733 (eq. 2).

    Args:
        p: (B, D) online predictions (receive gradients).
        z: (B, D) target projections from the EMA network; **detached here**.

    Returns:
        Scalar in [0, 4], mean over the batch; 0 when ``p`` and ``z`` are parallel.

    Numerical notes:
        Computed as ``2 - 2 cos`` with ``F.cosine_similarity`` (eps 1e-8 on the norms, so a zero
        vector gives 2, not NaN). The paper symmetrises by swapping views; the method adds the
        two terms.
    """
    _check_pair(p, z, "p, z")
    return (2.0 - 2.0 * F.cosine_similarity(p, z.detach(), dim=1)).mean()


@_at_least_float32
def barlow_twins(z0: Tensor, z1: Tensor, lambda_offdiag: float = 5e-3, eps: float = 1e-5) -> Tensor:
    """Barlow Twins: drive the cross-correlation matrix of the two views to the identity.

    Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy Reduction",
    https://arxiv.org/abs/2103.03230 (eq. 1, 2 and Algorithm 1).

    Each dimension is standardised over the batch, ``C = z0n.T @ z1n / B`` (D, D), and the loss is
    ``sum_i (1 - C_ii)^2 + lambda_offdiag * sum_{i != j} C_ij^2``.

    Args:
        z0: (B, D) projections of the first views.
        z1: (B, D) projections of the second views.
        lambda_offdiag: weight of the redundancy-reduction term (paper: 5e-3 for D = 8192; it
            should shrink roughly like 1/D for wider projectors).
        eps: added to the variance before the square root, as in the paper's
            ``BatchNorm1d(affine=False)``.

    Returns:
        Scalar, a sum (not a mean) over entries of C, so it grows with D. 0 when both
        views are identical with decorrelated dimensions. Symmetric in ``z0, z1``.

    Numerical notes:
        Standardisation uses the biased batch variance (like batch norm in training mode).
        Requires B >= 2; a dimension that is constant over the batch standardises to 0.
    """
    _check_pair(z0, z1)
    if z0.shape[0] < 2:
        raise ValueError("barlow_twins needs a batch of at least 2 to standardise dimensions")

    def standardise(x: Tensor) -> Tensor:
        return (x - x.mean(dim=0)) / torch.sqrt(x.var(dim=0, unbiased=False) + eps)

    c = standardise(z0).T @ standardise(z1) / z0.shape[0]  # (D, D)
    diag = torch.diagonal(c)
    on = (1.0 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on + lambda_offdiag * off


@_at_least_float32
def vicreg_terms(z0: Tensor, z1: Tensor, eps: float = 1e-4) -> dict[str, Tensor]:
    """The three unweighted VICReg terms: invariance, variance and covariance.

    Bardes et al. 2021, "VICReg: Variance-Invariance-Covariance Regularization for
    Self-Supervised Learning", https://arxiv.org/abs/2105.04906 (eq. 1-5, Algorithm 1).

    Args:
        z0: (B, D) projections of the first views.
        z1: (B, D) projections of the second views.
        eps: added to the variance before the square root of the hinge on the std.

    Returns:
        ``{"invariance", "variance", "covariance"}``, scalars with graphs:

        - invariance: ``mse(z0, z1)``, mean over B * D;
        - variance: mean over dimensions of ``relu(1 - sqrt(var + eps))``, averaged over the two
          branches (unbiased variance over the batch);
        - covariance: sum of squared off-diagonal entries of each branch's covariance matrix
          (divided by B - 1), divided by D, summed over the two branches.

    Numerical notes:
        Matches the official implementation (facebookresearch/vicreg). Requires B >= 2.
    """
    _check_pair(z0, z1)
    b, d = z0.shape
    if b < 2:
        raise ValueError("vicreg needs a batch of at least 2 to estimate variances")
    invariance = F.mse_loss(z0, z1)
    x0 = z0 - z0.mean(dim=0)
    x1 = z1 - z1.mean(dim=0)
    std0 = torch.sqrt(x0.var(dim=0) + eps)
    std1 = torch.sqrt(x1.var(dim=0) + eps)
    variance = F.relu(1.0 - std0).mean() / 2 + F.relu(1.0 - std1).mean() / 2

    def off_diagonal_sq(x: Tensor) -> Tensor:
        cov = x.T @ x / (b - 1)  # (D, D)
        return (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / d

    covariance = off_diagonal_sq(x0) + off_diagonal_sq(x1)
    return {"invariance": invariance, "variance": variance, "covariance": covariance}


@_at_least_float32
def vicreg(
    z0: Tensor,
    z1: Tensor,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    eps: float = 1e-4,
) -> Tensor:
    """VICReg loss: weighted sum of the terms of :func:`vicreg_terms`.

    Bardes et al. 2021, https://arxiv.org/abs/2105.04906 (eq. 6); defaults are the paper's
    lambda = mu = 25, nu = 1.

    Args:
        z0: (B, D) projections of the first views.
        z1: (B, D) projections of the second views.
        sim_weight: lambda, weight of the invariance (MSE) term.
        var_weight: mu, weight of the variance hinge.
        cov_weight: nu, weight of the covariance term.
        eps: see :func:`vicreg_terms`.

    Returns:
        Scalar. Symmetric in ``z0, z1``.
    """
    t = vicreg_terms(z0, z1, eps=eps)
    return sim_weight * t["invariance"] + var_weight * t["variance"] + cov_weight * t["covariance"]


# --------------------------------------------------------------------------------------------
# Metric learning losses on distances
# --------------------------------------------------------------------------------------------


@_at_least_float32
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
    _check_pair(z0, z1)
    if same.shape != (z0.shape[0],):
        raise ValueError(f"same must have shape ({z0.shape[0]},); got {tuple(same.shape)}")
    same_f = same.to(device=z0.device, dtype=z0.dtype)
    sq = (z0 - z1).pow(2).sum(dim=1)  # (B,)
    d = sq.clamp_min(_DIST_EPS).sqrt()
    per_pair = same_f * sq + (1.0 - same_f) * F.relu(margin - d).pow(2)
    return 0.5 * per_pair.mean()


@_at_least_float32
def pairwise_margin_contrastive(z: Tensor, labels: Tensor, margin: float = 1.0) -> Tensor:
    """Margin contrastive loss over all pairs of a labelled batch.

    Hadsell, Chopra & LeCun 2006, https://doi.org/10.1109/CVPR.2006.100 (eq. 4), applied to
    every unordered pair ``i < j`` of the batch, with ``same = labels[i] == labels[j]``.

    Args:
        z: (B, D) embeddings (not normalised here; see :func:`margin_contrastive`).
        labels: (B,) integer labels; pairs involving a ``-1`` (unlabelled) sample are ignored.
        margin: m > 0, in the units of ``z``.

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
    sq = _pairwise_distances(z, squared=True)  # (B, B)
    d = sq.clamp_min(_DIST_EPS).sqrt()
    labelled = labels != UNLABELLED
    upper = torch.ones_like(sq, dtype=torch.bool).triu(diagonal=1)
    valid = upper & labelled[:, None] & labelled[None, :]
    same = labels[:, None] == labels[None, :]
    per_pair = 0.5 * torch.where(same, sq, F.relu(margin - d).pow(2))
    return _masked_mean(per_pair, valid)


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
    return _pairwise_distances(z, squared=squared), both & same & ~eye, both & ~same


@_at_least_float32
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
    return _masked_mean(F.relu(d_ap - d_an + margin), valid)


_CUBE_ENTRIES = 2**24  # largest (anchors, positives, negatives) block built at once


@_at_least_float32
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


# --------------------------------------------------------------------------------------------
# Supervised
# --------------------------------------------------------------------------------------------


@_at_least_float32
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
