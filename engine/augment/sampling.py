"""Per-sample random draws from an explicit ``torch.Generator`` on the data's device.

Every random number of the augmentation pipeline comes through here, so a run seeded with its
own generator is reproducible and two generators with different seeds give different views.
"""

from __future__ import annotations

import torch


def uniform(
    g: torch.Generator | None, shape: tuple[int, ...], lo: float, hi: float, device: torch.device
) -> torch.Tensor:
    """Uniform floats in ``[lo, hi)`` of ``shape`` (float32, on ``device``)."""
    u = torch.rand(shape, generator=g, device=device)
    return u.mul_(hi - lo).add_(lo) if (lo, hi) != (0.0, 1.0) else u


def coin(g: torch.Generator | None, b: int, p: float, device: torch.device) -> torch.Tensor:
    """Bool ``(b,)``: which samples an op with probability ``p`` applies to."""
    if p >= 1.0:
        return torch.ones(b, dtype=torch.bool, device=device)
    return torch.rand(b, generator=g, device=device) < p


def randint(
    g: torch.Generator | None, shape: tuple[int, ...], lo: int, hi: int, device: torch.device
) -> torch.Tensor:
    """Integers in ``[lo, hi]`` inclusive, as float32 (they feed affine matrices)."""
    u = torch.rand(shape, generator=g, device=device)
    return torch.floor(u * (hi - lo + 1)).clamp_(max=hi - lo).add_(lo)


def check_generator(g: torch.Generator | None, device: torch.device) -> None:
    """Raise ValueError when the generator lives on another device than the images."""
    if g is not None and g.device.type != device.type:
        raise ValueError(
            f"the generator is on {g.device} but the images are on {device}; create it with "
            f"torch.Generator(device=images.device)"
        )
