"""Non-contrastive losses (bootstrap, redundancy reduction): SimSiam, BYOL, Barlow Twins,
VICReg.

The numerics every loss shares are in :mod:`engine.losses`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.losses.numerics import (
    at_least_float32,
    check_pair,
)


@at_least_float32
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
    check_pair(p, z, "p, z")
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


@at_least_float32
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
    check_pair(p, z, "p, z")
    return (2.0 - 2.0 * F.cosine_similarity(p, z.detach(), dim=1)).mean()


@at_least_float32
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
    check_pair(z0, z1)
    if z0.shape[0] < 2:
        raise ValueError("barlow_twins needs a batch of at least 2 to standardise dimensions")

    def standardise(x: Tensor) -> Tensor:
        return (x - x.mean(dim=0)) / torch.sqrt(x.var(dim=0, unbiased=False) + eps)

    c = standardise(z0).T @ standardise(z1) / z0.shape[0]  # (D, D)
    diag = torch.diagonal(c)
    on = (1.0 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on + lambda_offdiag * off


@at_least_float32
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
    check_pair(z0, z1)
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


@at_least_float32
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
