"""Turning uint8 image tensors into something a browser shows crisply."""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
from PIL import Image


def to_hwc(image: Any) -> np.ndarray:
    """uint8 (C, H, W) tensor or array -> uint8 (H, W, 3)."""
    a = image.numpy() if hasattr(image, "numpy") else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = np.transpose(a, (1, 2, 0))
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a.astype(np.uint8))


def enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscale of (H, W, 3) to about ``size`` px on its long side: small
    images stay sharp on a projector instead of being blurred by the browser."""
    h, w = image.shape[:2]
    factor = max(1, int(round(size / max(h, w))))
    if factor == 1:
        return image
    return np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.NEAREST))


def thumbs(images: Any, size: int = 96) -> list[np.ndarray]:
    """A list of enlarged (H, W, 3) thumbnails of uint8 images (N, C, H, W)."""
    return [enlarge(to_hwc(im), size) for im in images]


def file_thumb(path: str, size: int) -> np.ndarray:
    """An image file as (H, W, 3), read as the folder loader reads it (upright, alpha over
    white): a large one shrunk to at most twice ``size`` px (sharp on a dense screen), a small
    one enlarged as :func:`enlarge` does. OSError or ValueError when it cannot be read."""
    return enlarge(_file_thumb(path, size, os.stat(path).st_mtime_ns), size)


@functools.lru_cache(maxsize=512)
def _file_thumb(path: str, size: int, mtime_ns: int) -> np.ndarray:
    from engine.data.decode import decode_file

    im = Image.fromarray(to_hwc(decode_file(path, 2 * size)))
    im.thumbnail((2 * size, 2 * size))
    return np.asarray(im)


def grid(images: Any, columns: int = 8, size: int = 64, gap: int = 2) -> np.ndarray:
    """One picture of images (N, C, H, W) in a grid, white gaps between them."""
    tiles = thumbs(images, size)
    if not tiles:
        return np.full((size, size, 3), 255, np.uint8)
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + columns - 1) // columns
    cols = min(columns, len(tiles))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = t
    return out


def row_blocks(grid_image: np.ndarray, rows_per_block: int, rows: int, gap: int = 12) -> np.ndarray:
    """Cut a tall grid picture of ``rows`` equal rows into blocks of ``rows_per_block`` rows and
    lay the blocks side by side (a wide picture suits a screen better than a tall one)."""
    h = grid_image.shape[0]
    row_h = h / rows
    blocks = []
    for start in range(0, rows, rows_per_block):
        top, bottom = round(start * row_h), round(min(rows, start + rows_per_block) * row_h)
        blocks.append(grid_image[top:bottom])
    height = max(b.shape[0] for b in blocks)
    spacer = np.full((height, gap, 3), 255, np.uint8)
    padded = [np.pad(b, ((0, height - b.shape[0]), (0, 0), (0, 0)), constant_values=255)
              for b in blocks]
    out = [padded[0]]
    for b in padded[1:]:
        out += [spacer, b]
    return np.concatenate(out, axis=1)
