"""2-D maps of an embedding space: PCA (instant) and UMAP on a faiss cosine kNN graph.

UMAP: McInnes et al. 2018 (https://arxiv.org/abs/1802.03426), umap-learn. The slow part of a
first UMAP call in a process is numba compiling its kernels (tens of seconds); the kNN graph
is computed here with faiss (exact, fast) and handed to umap-learn as ``precomputed_knn``, and
:func:`warm_up_umap` pays the compile cost in the background before the first user map.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np

from engine.eval.retrieval import NeighbourIndex
from engine.eval.vectors import as_matrix

#: below this many points UMAP has too few neighbours to say anything; we return PCA instead
MIN_UMAP_POINTS = 8

_warm_lock = threading.Lock()
_warm_thread: threading.Thread | None = None
_warm_done = threading.Event()  # set when the warm-up has finished (successfully or not)


def pca_2d(feats: Any) -> np.ndarray:
    """Projection onto the two leading principal axes (centred data).

    The sign of each axis is fixed (its largest-magnitude loading is positive) so the same
    data always gives the same picture.

    Args:
        feats: (N, D).

    Returns:
        float32 (N, 2); a zero second column when D == 1 or the data has rank < 2.
    """
    x = as_matrix(feats).astype(np.float64)
    x = x - x.mean(axis=0)
    # D x D covariance eigenvectors: N * D^2 work, cheaper than an SVD of x when N >> D
    evals, evecs = np.linalg.eigh(x.T @ x)  # ascending
    axes = evecs[:, ::-1][:, :2]  # (D, <=2)
    axes = axes * np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    out = np.zeros((x.shape[0], 2))
    out[:, : axes.shape[1]] = x @ axes
    return out.astype(np.float32)


def knn_graph(feats: Any, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN graph in the layout umap-learn's ``precomputed_knn`` expects.

    Args:
        feats: (N, D).
        n_neighbors: neighbours per point counting the point itself; clipped to N.

    Returns:
        knn_indices: int64 (N, n_neighbors), column 0 the point itself.
        knn_dists: float32 (N, n_neighbors) cosine distances ``1 - cos`` in [0, 2], column 0
            zero, ascending per row.
    """
    if n_neighbors < 1:
        raise ValueError(f"n_neighbors must be at least 1; got {n_neighbors}")
    x = as_matrix(feats)
    n = x.shape[0]
    ids = np.arange(n)
    sims, idx = NeighbourIndex(x).neighbours_of(ids, min(n_neighbors, n) - 1)  # self excluded
    indices = np.concatenate([ids[:, None], idx], axis=1)
    dists = np.concatenate([np.zeros((n, 1), np.float32), np.clip(1.0 - sims, 0.0, 2.0)], 1)
    return indices, dists.astype(np.float32)


def umap_2d(
    feats: Any,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int | None = 0,
    n_epochs: int | None = None,
    init: np.ndarray | None = None,
    max_points: int | None = None,
) -> np.ndarray:
    """UMAP of the embeddings with the cosine metric, on an exact faiss kNN graph.

    Args:
        feats: (N, D).
        n_neighbors: UMAP's neighbourhood size (local vs global structure); clipped to N - 1.
        min_dist: how tightly UMAP packs points (0 = tight clumps).
        seed: with an int the map is reproducible (umap-learn then runs its layout on one
            thread); None lets it use every core, non-deterministically.
        n_epochs: layout optimisation epochs; None = umap-learn's default (500 up to 10,000
            points, 200 above). The layout is most of a warm map's time: fewer epochs, a
            faster and rougher map.
        init: (N, 2) a layout to start from instead of the spectral one, e.g. the map of the
            same points at the previous snapshot (a warm start: a few epochs move it to the
            new embeddings; the map also keeps its orientation from one snapshot to the next).
        max_points: above this many points, UMAP lays out a random subset of this size
            (fixed by ``seed``) and each other point is placed by :func:`place_by_neighbours`;
            None = every point. ``engine.eval.map_quality`` measures what this costs.

    Returns:
        float32 (N, 2). Fewer than ``MIN_UMAP_POINTS`` points: :func:`pca_2d` instead.
    """
    x = as_matrix(feats)
    n = x.shape[0]
    if init is not None and np.shape(init) != (n, 2):
        raise ValueError(f"init must be ({n}, 2) like the map; got {np.shape(init)}")
    if max_points is not None and n > max_points >= MIN_UMAP_POINTS:
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, max_points, replace=False))
        part = umap_2d(x[sample], n_neighbors, min_dist, seed, n_epochs,
                       None if init is None else np.asarray(init)[sample])
        return place_by_neighbours(x, sample, part)
    if n < MIN_UMAP_POINTS:
        return pca_2d(x)
    import umap  # slow import (numba); only paid by the first map

    k = max(2, min(int(n_neighbors), n - 1))
    indices, dists = knn_graph(x, k)
    # umap-learn warns that a kNN graph without its NNDescent index cannot ``transform`` new
    # points; we never call transform. (Re-added each call: filterwarnings is idempotent, and
    # unlike catch_warnings it does not race with other threads.)
    warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)
    reducer = umap.UMAP(
        n_neighbors=k,
        n_components=2,
        metric="cosine",
        min_dist=min_dist,
        random_state=seed,
        n_jobs=1 if seed is not None else -1,
        precomputed_knn=(indices, dists),
        init="spectral" if init is None else np.asarray(init, dtype=np.float32),
        n_epochs=n_epochs,
    )
    return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def place_by_neighbours(feats: Any, sample: np.ndarray, coords: np.ndarray,
                        k: int = 5) -> np.ndarray:
    """A map of all N points from a map of some of them: each point outside ``sample`` goes to
    the similarity-weighted mean position of its ``k`` cosine-nearest sampled points (the
    starting guess of umap-learn's ``transform``, without its optimisation).

    Args:
        feats: (N, D); sample: (M,) sorted rows of ``feats`` that ``coords`` (M, 2) maps.

    Returns:
        float32 (N, 2): ``coords`` at ``sample``, the placed points elsewhere.
    """
    x = as_matrix(feats)
    out = np.zeros((x.shape[0], 2), np.float32)
    out[sample] = coords
    rest = np.setdiff1d(np.arange(x.shape[0]), sample)
    if len(rest):
        sims, idx = NeighbourIndex(x[sample]).search(x[rest], k)  # (R, k)
        w = np.maximum(sims, 0.0) + 1e-6  # (R, k); the 1e-6 keeps rows of zeros defined
        out[rest] = (w[:, :, None] * coords[idx]).sum(1) / w.sum(1, keepdims=True)
    return out


def _warm_up() -> None:
    try:
        rng = np.random.default_rng(0)
        # two far-apart blobs: also compiles the path that lays out disconnected components
        blobs = rng.normal(size=(2, 1, 16)) * 10 + rng.normal(size=(2, 40, 16))
        umap_2d(blobs.reshape(80, 16), n_neighbors=10)
    finally:
        _warm_done.set()


def warm_up_umap(background: bool = True) -> threading.Thread | None:
    """Compile umap-learn's numba kernels on a tiny input so the first real map is fast.

    Idempotent: the work runs once per process, in one daemon thread, and every call with
    ``background=True`` returns that same thread.

    Args:
        background: return at once with the thread (join it to wait); False waits for the
            warm-up to finish and returns None.
    """
    global _warm_thread
    with _warm_lock:
        if _warm_thread is None:
            _warm_thread = threading.Thread(target=_warm_up, name="umap-warm-up", daemon=True)
            _warm_thread.start()
        thread = _warm_thread
    if background:
        return thread
    thread.join()
    return None


def umap_is_warm() -> bool:
    """Whether :func:`warm_up_umap` has finished in this process."""
    return _warm_done.is_set()
