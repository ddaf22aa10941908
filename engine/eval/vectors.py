"""Embedding matrices in, checked float32 numpy out: the one entrance to every eval function.

Every public function of ``engine.eval`` accepts numpy arrays or torch tensors (any device, any
float dtype, with or without grad) and calls :func:`as_matrix` first, so the checks (2-D, not
empty, finite) and their messages are the same everywhere. faiss wants float32 C-contiguous
arrays; :func:`as_matrix` returns exactly that.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

_EPS = 1e-12  # below this norm a vector is treated as zero (and stays zero when normalised)


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view/copy of ``x``; torch tensors are detached, moved to CPU and made float32
    (bf16/fp16 have no faithful numpy dtype) when floating point."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        t = x.detach()
        if t.is_floating_point():
            t = t.float()
        return t.cpu().numpy()
    return np.asarray(x)


def as_matrix(x: Any, name: str = "") -> np.ndarray:
    """Checked float32 C-contiguous matrix.

    Args:
        x: embeddings (N, D), numpy or torch. A single vector (D,) is read as (1, D).
        name: which embeddings, for error messages ("train" -> "train embeddings contain NaN").

    Returns:
        float32 array (N, D), C-contiguous.

    Raises:
        ValueError: not 1-D/2-D, empty (N == 0 or D == 0), or containing NaN / inf.
    """
    what = f"{name} embeddings".strip()
    a = to_numpy(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{what} must be a matrix (N, D); got shape {tuple(a.shape)}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what} are empty (shape {tuple(a.shape)})")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        kind = "NaN" if np.isnan(a).any() else "inf"
        raise ValueError(f"{what} contain {kind}")
    return a


def as_labels(y: Any, n: int, name: str = "labels") -> np.ndarray:
    """Integer labels (N,) as int64; ``-1`` (any negative value) marks an unlabelled sample.

    Raises:
        ValueError: not 1-D or length not ``n``.
    """
    a = to_numpy(y)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},); got {tuple(a.shape)}")
    return a.astype(np.int64, copy=False)


def same_shape(a: np.ndarray, b: np.ndarray, names: str = "z0 and z1") -> None:
    """Raise a ValueError unless paired embeddings have equal shapes."""
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape; got {a.shape} and {b.shape}")


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32 (N, D)); all-zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, _EPS), dtype=np.float32)


@contextlib.contextmanager
def faiss_threads(n_queries: int = 0) -> Iterator[Any]:
    """The faiss module, with the calling thread's OpenMP pool sized for a search while the
    ``with`` block runs, and put back after it: faiss and torch share one OpenMP runtime, so
    the count set here is also torch's count in this thread (a run's evaluation would otherwise
    undo the thread count its training chose, ``engine.device.StepThreads``, and a page's search
    for one query would leave that page's thread to run torch on one thread).

    OpenMP thread counts are per calling thread (``omp_set_num_threads`` in the main thread
    does not reach the UI's or the runner's threads), so the count is set on every call; that
    is only a write of a thread-local value. Batches of 20 queries or more (faiss's threshold
    for its BLAS path) get ``min(cores, 4)`` threads: more oversubscribes the cores that
    torch (training thread) and numba (UMAP) also use. Smaller batches get one thread: faiss
    gains nothing from more there, and on a busy 2-core machine a single query against
    50,000 x 512 took 5 ms on one thread against 26 ms on two (bench/bench_eval.py).
    ``SSL_STUDIO_FAISS_THREADS`` caps the count.

    Args:
        n_queries: rows of the coming search (0: index building only).
    """
    import faiss

    cap = int(os.environ.get("SSL_STUDIO_FAISS_THREADS", 0)) or min(os.cpu_count() or 1, 4)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, min(cap, 1 if n_queries < 20 else cap)))
    try:
        yield faiss
    finally:
        faiss.omp_set_num_threads(before)
