"""What every loss shares: float32 inside autocast, shape checks, masked means, distances."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch
from torch import Tensor

UNLABELLED = -1
# Clamp for squared distances before sqrt: d sqrt(x)/dx is infinite at 0 (identical points).
DIST_EPS = 1e-12

_P = ParamSpec("_P")
_R = TypeVar("_R")


def at_least_float32(fn: Callable[_P, _R]) -> Callable[_P, _R]:
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


def check_pair(a: Tensor, b: Tensor, names: str = "z0, z1") -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"{names} must both have shape (B, D); got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def mask_self(logits: Tensor) -> Tensor:
    """Remove the diagonal from a square logit matrix (finite fill, so even an all-masked row
    has a finite log-sum-exp and a finite gradient)."""
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    return logits.masked_fill(eye, torch.finfo(logits.dtype).min)


def pairwise_distances(z: Tensor, squared: bool) -> Tensor:
    """Euclidean distance matrix (B, B) via the Gram matrix, clamped to stay differentiable."""
    sq_norm = (z * z).sum(dim=1)  # (B,)
    sq = (sq_norm[:, None] + sq_norm[None, :] - 2.0 * z @ z.T).clamp_min(0.0)  # (B, B)
    if squared:
        return sq
    return sq.clamp_min(DIST_EPS).sqrt()


def masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``values`` where ``valid``; exactly 0 (with grad) when nothing is valid."""
    total = torch.where(valid, values, torch.zeros_like(values)).sum()
    return total / valid.sum().clamp_min(1)
