"""How well classes cluster in an embedding space, and how two spaces differ (SupCon vs CE).

Label-aware but classifier-free: silhouette (Rousseeuw 1987) on cosine distance, neighbour
purity (leave-one-out precision@k), and the overlap of each point's neighbourhood between two
embeddings of the same images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.eval.retrieval import NeighbourIndex, mean_precision_at_k
from engine.eval.vectors import as_labels, as_matrix


def silhouette(
    feats: Any, labels: Any, metric: str = "cosine", sample: int = 2000, seed: int = 0
) -> float:
    """Mean silhouette coefficient of the labelled points, in [-1, 1] (sklearn).

    Args:
        feats: (N, D); labels: (N,), negatives (unlabelled) are left out.
        metric: any sklearn pairwise metric; cosine matches the rest of the eval code.
        sample: at most this many points (seeded draw); silhouette is O(N^2).

    Returns:
        the score, or NaN when fewer than 2 classes (or no two points) are present.
    """
    from sklearn.metrics import silhouette_score

    x = as_matrix(feats)
    y = as_labels(labels, x.shape[0])
    keep = np.flatnonzero(y >= 0)
    if keep.size > sample:
        keep = np.sort(np.random.default_rng(seed).choice(keep, sample, replace=False))
    x, y = x[keep], y[keep]
    n_classes = np.unique(y).size
    if n_classes < 2 or n_classes >= y.size:
        return float("nan")  # sklearn requires 2 <= classes <= N - 1
    return float(silhouette_score(x, y, metric=metric))


def neighbour_purity(feats: Any, labels: Any, k: int = 10) -> float:
    """Mean fraction of each labelled point's k nearest neighbours (cosine, itself excluded)
    that share its label: :func:`engine.eval.retrieval.mean_precision_at_k`."""
    return mean_precision_at_k(feats, labels, k)


def neighbourhood_overlap(feats_a: Any, feats_b: Any, k: int = 10) -> float:
    """Mean Jaccard index of each point's top-k neighbour set in space a and in space b.

    1 when both spaces rank every point's neighbours alike, ~k/N for unrelated spaces.

    Args:
        feats_a: (N, Da); feats_b: (N, Db), row i the same image in both.
    """
    a = as_matrix(feats_a, "feats_a")
    b = as_matrix(feats_b, "feats_b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"both spaces must embed the same images; got {a.shape[0]}, {b.shape[0]}")
    ids = np.arange(a.shape[0])
    _, ia = NeighbourIndex(a).neighbours_of(ids, k)  # (N, k)
    _, ib = NeighbourIndex(b).neighbours_of(ids, k)
    k_eff = ia.shape[1]
    if k_eff == 0:
        raise ValueError("neighbourhood overlap needs at least 2 points")
    # |A ∩ B| per row: sort both rows, then count matches with a merged sort
    both = np.sort(np.concatenate([ia, ib], axis=1), axis=1)  # (N, 2k)
    inter = (both[:, 1:] == both[:, :-1]).sum(axis=1)  # sets have no repeats within a row
    return float((inter / (2 * k_eff - inter)).mean())


def compare_runs(feats_a: Any, feats_b: Any, labels: Any, k: int = 10) -> dict:
    """Side-by-side comparison of two embeddings of the same images (e.g. SupCon vs CE).

    Args:
        feats_a: (N, Da); feats_b: (N, Db); labels: (N,), -1 unlabelled.

    Returns:
        JSON-able dict: precision_a, precision_b (mean precision@k), silhouette_a,
        silhouette_b (cosine; None where undefined), overlap (mean Jaccard of top-k
        neighbour sets), k.
    """
    sil_a, sil_b = silhouette(feats_a, labels), silhouette(feats_b, labels)
    return {
        "k": int(k),
        "precision_a": neighbour_purity(feats_a, labels, k),
        "precision_b": neighbour_purity(feats_b, labels, k),
        "silhouette_a": None if np.isnan(sil_a) else sil_a,
        "silhouette_b": None if np.isnan(sil_b) else sil_b,
        "overlap": neighbourhood_overlap(feats_a, feats_b, k),
    }
