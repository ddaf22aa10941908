"""How faithful a 2-D map is to its embedding space (the share of each point's neighbours that
stay its neighbours on the map), and how much a map moves from one snapshot to the next.

kNN preservation (the "neighbourhood hit" of Espadoto et al. 2019, "Toward a quantitative
survey of dimension reduction techniques", https://doi.org/10.1109/TVCG.2019.2944182): for each
point, the fraction of its k cosine neighbours in the full space that are among its k Euclidean
neighbours on the map, averaged over points. 1 = every neighbourhood kept; a random map of N
points scores about k / N. Unlike trustworthiness it needs no N x N rank matrix: two exact faiss
searches, so it is cheap at 50,000 points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.eval.retrieval import NeighbourIndex
from engine.eval.vectors import as_matrix, faiss_threads


def map_neighbours(coords: Any, k: int) -> np.ndarray:
    """Each map point's k nearest other map points (Euclidean), int64 (N, k).

    Args:
        coords: (N, 2) map coordinates; k: clipped to N - 1.
    """
    xy = np.ascontiguousarray(as_matrix(coords, "coords"), dtype=np.float32)
    n = xy.shape[0]
    k = min(int(k), n - 1)
    with faiss_threads(n) as faiss:
        index = faiss.IndexFlatL2(xy.shape[1])
        index.add(xy)
        _, idx = index.search(xy, k + 1)  # (N, k + 1), self usually first
    keep = idx != np.arange(n)[:, None]
    keep[keep.all(axis=1), -1] = False  # self not found (duplicates): drop the last
    return idx[keep].reshape(n, k).astype(np.int64)


def knn_preservation(feats: Any, coords: Any, k: int = 10) -> float:
    """Mean fraction of each point's k cosine neighbours in ``feats`` (N, D) that are among
    its k Euclidean neighbours in ``coords`` (N, 2); in [0, 1], higher is more faithful."""
    x = as_matrix(feats)
    if len(coords) != x.shape[0]:
        raise ValueError(f"coords have {len(coords)} rows; feats have {x.shape[0]}")
    _, high = NeighbourIndex(x).neighbours_of(np.arange(x.shape[0]), k)  # (N, k)
    low = map_neighbours(coords, high.shape[1])  # (N, k)
    hits = (high[:, :, None] == low[:, None, :]).any(axis=2)  # (N, k)
    return float(hits.mean())


def map_agreement(a: Any, b: Any, k: int = 10) -> float:
    """Mean fraction of each point's k map neighbours in ``a`` (N, 2) that are also among its
    k map neighbours in ``b`` (N, 2): how alike two maps of the same points read locally."""
    na, nb = map_neighbours(a, k), map_neighbours(b, k)
    return float((na[:, :, None] == nb[:, None, :]).any(axis=2).mean())


def map_shift(before: Any, after: Any) -> float:
    """How far the points of a map moved from one map of them to the next, as a person sees
    it (no rotation or reflection is undone): the median distance a point moved, with each
    map centred and scaled to a root-mean-square radius of 1. 0 = the same picture; two
    unrelated maps of the same points are around 1 to 1.4 apart.

    Args:
        before, after: (N, 2) maps of the same N points, row for row.
    """
    a, b = (as_matrix(m, "coords").astype(np.float64) for m in (before, after))
    if a.shape != b.shape:
        raise ValueError(f"the maps differ in shape: {a.shape} and {b.shape}")
    a, b = (m - m.mean(axis=0) for m in (a, b))
    a, b = (m / max(np.sqrt((m**2).sum(axis=1).mean()), 1e-12) for m in (a, b))
    return float(np.median(np.linalg.norm(a - b, axis=1)))
