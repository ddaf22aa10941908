"""The preview grid: source images next to their views, made by the training code path.

What you see is what trains: the grid calls :class:`Augmenter` exactly as the training loop
does, only with identity normalisation so that the views come back as displayable pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from engine.augment.pipeline import Augmenter


def preview_grid(
    images: torch.Tensor,
    views: Sequence[Sequence[dict[str, Any]]],
    n: int = 8,
    seed: int = 0,
    *,
    pad: int = 2,
    background: int = 255,
) -> np.ndarray:
    """A uint8 ``(H', W', 3)`` picture: one row per source image, the original then each view.

    images: uint8 ``(N, C, H, W)`` with C 1 or 3 (grayscale is shown as RGB); the first
        ``n`` are used, on their own device.
    views: per-view op lists, as given to :class:`Augmenter`.
    seed: seeds the generator, so the same seed shows the same views.
    pad: pixels of ``background`` between and around the cells.
    Returns ``H' = rows * (H + pad) + pad`` and ``W' = (1 + len(views)) * (W + pad) + pad``.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            f"expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    x = images[: max(1, n)]
    b, c, h, w = x.shape
    augmenter = Augmenter(views if len(views) else [[]], mean=(0.0,), std=(1.0,))
    g = torch.Generator(device=x.device).manual_seed(seed)
    cols = [x] + [augmenter.denormalise(v) for v in augmenter.views(x, augmenter.num_views, g)]
    cells = torch.stack(cols, 1).cpu()  # (B, V + 1, C, H, W)
    if c == 1:
        cells = cells.expand(-1, -1, 3, -1, -1)
    rows, ncols = cells.shape[0], cells.shape[1]
    grid = np.full((rows * (h + pad) + pad, ncols * (w + pad) + pad, 3), background, np.uint8)
    pixels = cells[:, :, :3].permute(0, 1, 3, 4, 2).numpy()  # (B, V + 1, H, W, 3)
    for r in range(rows):
        for k in range(ncols):
            top, left = pad + r * (h + pad), pad + k * (w + pad)
            grid[top : top + h, left : left + w] = pixels[r, k]
    return grid
