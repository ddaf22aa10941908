"""The view cloud of one image: N augmented views embedded with a run's encoder, and how far
they spread in ``h`` compared with other images of the same class.

The spread is a number: the mean cosine of each view to its source in ``h``, beside the mean
cosine of the source to other images of its class. Views closer to their source than the class
is to itself mean the encoder is invariant to those augmentations; views as far as other images
of the class mean the augmentations move an image about as much as the class varies.

Placement on a 2-D map: the map's projection is not kept (UMAP's ``transform`` would need the
fitted model), so each view is placed by its neighbours' positions (:func:`place_by_neighbours`):
the inverse-distance weighted mean of the map positions of its ``k`` nearest map images in ``h``
(cosine), exactly on a map image that it equals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.eval.encoder import RunEncoder
from engine.eval.retrieval import NeighbourIndex
from engine.eval.vectors import as_matrix

PLACEMENT = "neighbours' positions (inverse cosine-distance weighted mean of the k nearest)"


@dataclass
class ViewCloud:
    """N views of one source image.

    views: uint8 (N, C, H, W) for display; h: (N, D); source_h: (D,);
    cosine: (N,) cosine of each view to the source in ``h``; mean_cosine: its mean;
    class_cosine: mean cosine of the source to other images of its class (nan without any);
    xy: (N, 2) positions on the map, or None when no map was given; placement: how.
    """

    views: np.ndarray
    h: np.ndarray
    source_h: np.ndarray
    cosine: np.ndarray
    mean_cosine: float
    class_cosine: float
    xy: np.ndarray | None = None
    placement: str = ""


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def place_by_neighbours(
    points: Any, bank: Any, bank_xy: Any, k: int = 5, exact: float = 1e-6
) -> np.ndarray:
    """Positions (Q, 2) on a map for ``points`` (Q, D), from a bank (N, D) with map positions
    ``bank_xy`` (N, 2): the mean of the k nearest bank positions by cosine, weighted by
    ``1 / (1 - cos)``; a point within ``exact`` of a bank point takes its position."""
    pts, bk = as_matrix(points, "points"), as_matrix(bank, "bank")
    xy = np.asarray(bank_xy, dtype=np.float64)
    if xy.shape != (bk.shape[0], 2):
        raise ValueError(f"bank_xy must be ({bk.shape[0]}, 2), got {xy.shape}")
    sims, idx = NeighbourIndex(bk).search(pts, min(k, bk.shape[0]))  # (Q, k)
    dist = np.clip(1.0 - sims.astype(np.float64), 0.0, None)
    w = 1.0 / np.maximum(dist, exact)
    placed = (w[..., None] * xy[idx]).sum(1) / w.sum(1, keepdims=True)
    snap = dist[:, 0] <= exact
    placed[snap] = xy[idx[snap, 0]]
    return placed.astype(np.float32)


def view_cloud(
    encoder: RunEncoder,
    image: torch.Tensor,
    views: Sequence[Sequence[dict[str, Any]]],
    n: int = 32,
    seed: int = 0,
    same_class: torch.Tensor | None = None,
    bank_h: Any = None,
    bank_xy: Any = None,
    k: int = 5,
) -> ViewCloud:
    """The view cloud of ``image`` (uint8 (C, H, W)).

    views: the op lists to draw views from (the run's ``encoder.views``, or ``[[one op]]``);
        view i uses ``views[i % len(views)]``.
    n: views drawn; seed: their generator's seed.
    same_class: uint8 (M, C, H, W) other images of the source's class, for ``class_cosine``.
    bank_h, bank_xy: the map's images in ``h`` (N, D) and their positions (N, 2), to place
        the views (see :func:`place_by_neighbours`); both or neither.
    """
    if image.dtype != torch.uint8 or image.ndim != 3:
        raise ValueError(f"expected one uint8 image (C, H, W), got {image.dtype} "
                         f"{tuple(image.shape)}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if (bank_h is None) != (bank_xy is None):
        raise ValueError("give both bank_h and bank_xy to place views on a map, or neither")
    aug = encoder.augmenter([list(v) for v in views] or [[]])
    batch = image.unsqueeze(0).expand(n, -1, -1, -1).contiguous()
    g = torch.Generator().manual_seed(seed)
    made = torch.cat([aug.view(batch[i : i + 1], i, g) for i in range(n)]) if aug.num_views > 1 \
        else aug.view(batch, 0, g)
    pixels = aug.denormalise(made).numpy()
    h = encoder.embed_normalised(lambda x: x, made)
    source_h = encoder.embed(image.unsqueeze(0))[0]
    cos = _unit(h) @ _unit(source_h)
    class_cos = float("nan")
    if same_class is not None and len(same_class):
        class_cos = float((_unit(encoder.embed(same_class)) @ _unit(source_h)).mean())
    xy = None
    if bank_h is not None:
        xy = place_by_neighbours(h, bank_h, bank_xy, k)
    return ViewCloud(pixels, h, source_h, cos.astype(np.float32), float(cos.mean()), class_cos,
                     xy, PLACEMENT if xy is not None else "")
