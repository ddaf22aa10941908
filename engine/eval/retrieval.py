"""Nearest-neighbour retrieval in cosine space: a faiss index, a numpy reference, precision@k.

Cosine similarity is the inner product of L2-normalised vectors, so an exact
``faiss.IndexFlatIP`` over normalised rows is an exact cosine search
(https://github.com/facebookresearch/faiss/wiki/MetricType-and-distances).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.eval.vectors import as_labels, as_matrix, faiss_threads, l2_normalise


def _check_k(k: int) -> int:
    if int(k) < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    return int(k)


class NeighbourIndex:
    """Exact cosine k-nearest-neighbour search (faiss ``IndexFlatIP`` over L2-normalised rows).

    Args:
        feats: indexed embeddings (N, D), numpy or torch.
    """

    def __init__(self, feats: Any) -> None:
        x = l2_normalise(as_matrix(feats))  # (N, D)
        self._vectors = x
        with faiss_threads() as faiss:
            self._index = faiss.IndexFlatIP(x.shape[1])
            self._index.add(x)

    @property
    def size(self) -> int:
        """Number of indexed vectors N."""
        return self._vectors.shape[0]

    @property
    def dim(self) -> int:
        """Vector dimension D."""
        return self._vectors.shape[1]

    def search(
        self, queries: Any, k: int, exclude_self: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k most cosine-similar indexed vectors of each query.

        Args:
            queries: (Q, D). With ``exclude_self`` they must be the indexed vectors themselves
                (Q == N, row i is indexed vector i), and each row's own index is left out.
            k: neighbours per query; clipped to N (N - 1 with ``exclude_self``).

        Returns:
            sims: float32 (Q, k) cosine similarities, descending per row.
            idx: int64 (Q, k) indices into the indexed set.
        """
        k = _check_k(k)
        if exclude_self:
            q = as_matrix(queries, "query")
            if q.shape[0] != self.size:
                raise ValueError(
                    "exclude_self needs the indexed vectors as queries "
                    f"({self.size} rows); got {q.shape[0]}. Use neighbours_of(ids, k)."
                )
            return self.neighbours_of(np.arange(self.size), k)
        q = self._prepare(queries)
        with faiss_threads(q.shape[0]):
            sims, idx = self._index.search(q, min(k, self.size))
        return sims, idx.astype(np.int64, copy=False)

    def neighbours_of(self, ids: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of indexed vectors ``ids`` (Q,), each without itself.

        Self is removed by index, not by similarity, so exact duplicates of a point still
        count as its neighbours. k is clipped to N - 1.

        Returns:
            sims float32 (Q, k) and idx int64 (Q, k), as :meth:`search`.
        """
        k = min(_check_k(k), self.size - 1)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids must lie in [0, {self.size}); got {ids.min()}..{ids.max()}")
        if k == 0:
            empty = np.zeros((ids.size, 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        with faiss_threads(ids.size):
            sims, idx = self._index.search(self._vectors[ids], k + 1)  # (Q, k + 1)
        keep = idx != ids[:, None]
        # Rows where self was not found among k + 1 (many exact duplicates): drop the last.
        missing = keep.all(axis=1)
        keep[missing, -1] = False
        return (
            sims[keep].reshape(-1, k),
            idx[keep].reshape(-1, k).astype(np.int64, copy=False),
        )

    def _prepare(self, queries: Any) -> np.ndarray:
        q = as_matrix(queries, "query")
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}; the index has {self.dim}")
        return l2_normalise(q)


def brute_force_search(feats: Any, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-k in plain numpy (float64): the reference :class:`NeighbourIndex` is
    tested against. Ties go to the lower index.

    Args:
        feats: (N, D) indexed vectors; queries: (Q, D); k: clipped to N.

    Returns:
        sims float32 (Q, k), idx int64 (Q, k).
    """
    x = l2_normalise(as_matrix(feats)).astype(np.float64)
    q = l2_normalise(as_matrix(queries, "query")).astype(np.float64)
    k = min(_check_k(k), x.shape[0])
    s = q @ x.T  # (Q, N)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    sims = np.take_along_axis(s, idx, axis=1)
    return sims.astype(np.float32), idx.astype(np.int64)


def precision_at_k(neighbour_labels: Any, query_labels: Any) -> np.ndarray:
    """Fraction of each query's neighbours that share its label.

    Args:
        neighbour_labels: (Q, k) labels of the retrieved neighbours.
        query_labels: (Q,) labels of the queries.

    Returns:
        float64 (Q,); NaN for a query whose label is negative (unlabelled) or with k == 0.
    """
    nb = np.asarray(neighbour_labels)
    ql = np.asarray(query_labels)
    if nb.ndim != 2 or ql.ndim != 1 or nb.shape[0] != ql.shape[0]:
        raise ValueError(
            f"expected neighbour_labels (Q, k) and query_labels (Q,); got {nb.shape}, {ql.shape}"
        )
    with np.errstate(invalid="ignore"):
        p = (nb == ql[:, None]).mean(axis=1) if nb.shape[1] else np.full(ql.shape, np.nan)
    return np.where(ql >= 0, p, np.nan)


def mean_precision_at_k(feats: Any, labels: Any, k: int = 10) -> float:
    """Mean leave-one-out precision@k: each labelled point queries all the other labelled
    points (cosine), and counts how many of its k neighbours share its label.

    Unlabelled points (label < 0) are left out as queries and as neighbours, as in
    :func:`engine.eval.knn.knn_predict`.

    Args:
        feats: (N, D); labels: (N,) ints; k: clipped to (labelled points - 1).
    """
    x = as_matrix(feats)
    y = as_labels(labels, x.shape[0])
    keep = y >= 0
    if keep.sum() < 2:
        raise ValueError("mean precision@k needs at least 2 labelled points")
    x, y = x[keep], y[keep]
    _, idx = NeighbourIndex(x).neighbours_of(np.arange(x.shape[0]), k)
    return float(precision_at_k(y[idx], y).mean())
