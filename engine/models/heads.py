"""Projection / prediction heads from one factory."""

from __future__ import annotations

from torch import nn


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    layers: int = 2,
    batch_norm: bool = True,
    last_batch_norm: bool = False,
) -> nn.Sequential:
    """A ``layers``-deep MLP ``(B, in_dim) -> (B, out_dim)``: Linear-BN-ReLU blocks, then Linear.

    ``layers=2`` is SimCLR's projector (https://arxiv.org/abs/2002.05709); BYOL/SimSiam
    predictors use ``layers=2`` with a bottleneck ``hidden_dim``; SimSiam's projector ends with
    a BN without affine (``last_batch_norm=True``). ``layers=1`` is a linear head.
    """
    if layers < 1:
        raise ValueError("an MLP needs at least one layer")
    blocks: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        blocks.append(nn.Linear(dim, hidden_dim, bias=not batch_norm))
        if batch_norm:
            blocks.append(nn.BatchNorm1d(hidden_dim))
        blocks.append(nn.ReLU(inplace=True))
        dim = hidden_dim
    blocks.append(nn.Linear(dim, out_dim, bias=not last_batch_norm))
    if last_batch_norm:
        blocks.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*blocks)
