"""Colour jitter and grayscale composed into one affine colour map per sample.

Brightness, contrast, saturation, hue and grayscale each map a pixel's colour vector ``v`` to
``M v + t`` with a per-sample ``M`` (``(C, C)``) and ``t`` (``(C,)``); contrast's pivot, the
image's mean grey level, follows from the mean colour of the source image through the maps
already composed. So a view's run of colour ops costs the arithmetic on a few hundred numbers
per sample and one pass over the pixels, instead of one pass (and one clamp) per op.

The one difference from torchvision's sequential ops: values are clipped to ``[0, 1]`` once, at
the end, not after every op; the two agree exactly wherever no intermediate value leaves the
range. Hue is a rotation of the YIQ chroma plane (NVIDIA DALI's formulation), close to
torchvision's HSV shift for small shifts.
"""

from __future__ import annotations

import torch

from engine.augment.colour import apply_matrix, constants, hue_matrices


class ColourAffine:
    """Per-sample affine colour maps, composed op by op, applied once.

    x: the float ``(B, C, H, W)`` batch they will be applied to (C 1 or 3); its mean colour is
    what contrast pivots on. Colour-only ops (saturation, hue, grayscale) skip 1-channel images.
    """

    def __init__(self, x: torch.Tensor) -> None:
        b, c = x.shape[:2]
        self.c = c
        self.m = torch.eye(c, device=x.device).expand(b, c, c).clone()  # (B, C, C)
        self.t = torch.zeros(b, c, device=x.device)  # (B, C)
        self.mean = x.mean((2, 3))  # (B, C) source mean colour
        self.w = constants(x.device)["luma"] if c == 3 else torch.ones(1, device=x.device)

    def _then(self, m: torch.Tensor) -> None:
        self.m = m @ self.m
        self.t = (m @ self.t.unsqueeze(-1)).squeeze(-1)

    def brightness(self, f: torch.Tensor) -> None:
        """Scale by ``f`` ``(B,)``."""
        self.m = self.m * f.view(-1, 1, 1)
        self.t = self.t * f.view(-1, 1)

    def contrast(self, f: torch.Tensor) -> None:
        """Blend with the current image's mean grey level by ``f`` ``(B,)``."""
        current = (self.m @ self.mean.unsqueeze(-1)).squeeze(-1) + self.t  # (B, C)
        grey = (current * self.w).sum(1, keepdim=True)  # (B, 1)
        f = f.view(-1, 1)
        self.m = self.m * f.unsqueeze(-1)
        self.t = self.t * f + (1.0 - f) * grey

    def saturation(self, f: torch.Tensor) -> None:
        """Blend with the pixel's own grey level by ``f`` ``(B,)``."""
        if self.c == 1:
            return
        f = f.view(-1, 1, 1)
        grey = self.w.view(1, 1, 3).expand(1, 3, 3)  # every row: luma weights
        self._then(f * torch.eye(3, device=f.device) + (1.0 - f) * grey)

    def hue(self, shift: torch.Tensor) -> None:
        """Rotate hue by ``shift`` ``(B,)`` turns."""
        if self.c == 1:
            return
        self._then(hue_matrices(shift))

    def grayscale(self, mask: torch.Tensor) -> None:
        """Replace colour by luma where ``mask`` ``(B,)`` is set."""
        if self.c == 1:
            return
        grey = self.w.view(1, 1, 3).expand(mask.shape[0], 3, 3)
        eye = torch.eye(3, device=mask.device).expand_as(grey)
        self._then(torch.where(mask.view(-1, 1, 1), grey, eye))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The composed map on every pixel of ``x``, clipped to ``[0, 1]``."""
        return apply_matrix(x, self.m, self.t)
