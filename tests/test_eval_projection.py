"""2-D maps: PCA on known axes, the faiss kNN graph in umap's layout, UMAP on separated blobs."""

import numpy as np
import pytest

from engine.eval.projection import (
    MIN_UMAP_POINTS,
    knn_graph,
    pca_2d,
    umap_2d,
    umap_is_warm,
    warm_up_umap,
)
from engine.eval.retrieval import brute_force_search


def _blobs(n_per: int = 50, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 1, d)) * 5
    x = (centres + rng.normal(size=(3, n_per, d))).reshape(-1, d)
    return x.astype(np.float32), np.repeat(np.arange(3), n_per)


def _loo_knn_2d(e: np.ndarray, y: np.ndarray, k: int = 5) -> float:
    """Leave-one-out Euclidean kNN accuracy in the 2-D map."""
    d = ((e[:, None] - e[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    votes = y[np.argsort(d, axis=1)[:, :k]]
    pred = np.array([np.bincount(v).argmax() for v in votes])
    return float((pred == y).mean())


def test_pca_finds_the_known_principal_axes():
    rng = np.random.default_rng(0)
    n = 200
    a = rng.normal(size=n) * 3  # largest variance, along axis 3
    b = rng.normal(size=n)
    b -= b.mean()
    a -= a.mean()
    b -= a * (a @ b) / (a @ a)  # exactly uncorrelated with a
    b *= 1.5 / b.std()
    x = np.zeros((n, 6))
    x[:, 3], x[:, 1] = a + 7, b - 2  # offsets: PCA centres
    e = pca_2d(x)
    assert e.shape == (n, 2) and e.dtype == np.float32
    np.testing.assert_allclose(e[:, 0], a, atol=1e-4)  # sign fixed: max loading positive
    np.testing.assert_allclose(e[:, 1], b, atol=1e-4)


def test_pca_degenerate_shapes():
    assert np.array_equal(pca_2d(np.ones((1, 5))), np.zeros((1, 2), np.float32))
    e = pca_2d(np.arange(10.0)[:, None])
    assert e.shape == (10, 2) and np.all(e[:, 1] == 0)
    with pytest.raises(ValueError, match="embeddings contain NaN"):
        pca_2d(np.array([[np.nan, 1.0]]))


def test_knn_graph_has_self_first_and_matches_brute_force():
    x, _ = _blobs(20)
    x[5] = x[9]  # an exact duplicate must not displace self from column 0
    idx, dist = knn_graph(x, 6)
    assert idx.shape == dist.shape == (60, 6) and dist.dtype == np.float32
    assert np.array_equal(idx[:, 0], np.arange(60))
    assert np.all(dist[:, 0] == 0)
    assert (np.diff(dist, axis=1) >= -1e-6).all() and (dist >= 0).all() and (dist <= 2).all()
    assert idx[5, 1] == 9 and idx[9, 1] == 5 and dist[5, 1] == pytest.approx(0, abs=1e-6)
    sims, ref = brute_force_search(x, x, 6)
    np.testing.assert_allclose(np.sort(dist[:, 1:], 1), np.sort(1 - sims[:, 1:], 1), atol=1e-5)
    assert knn_graph(x[:3], 15)[0].shape == (3, 3)


def test_umap_separates_blobs_and_is_deterministic():
    x, y = _blobs()
    e = umap_2d(x, n_neighbors=10, seed=0)
    assert e.shape == (150, 2) and e.dtype == np.float32
    assert np.isfinite(e).all()
    assert _loo_knn_2d(e, y) > 0.98
    assert np.array_equal(e, umap_2d(x, n_neighbors=10, seed=0))


def test_umap_small_inputs():
    rng = np.random.default_rng(0)
    for n in (1, 2, MIN_UMAP_POINTS - 1, MIN_UMAP_POINTS, 12):
        e = umap_2d(rng.normal(size=(n, 4)), n_neighbors=15)
        assert e.shape == (n, 2) and np.isfinite(e).all()


def test_warm_up_is_idempotent():
    t1 = warm_up_umap()
    t2 = warm_up_umap(background=True)
    assert t1 is t2 and t1 is not None
    assert warm_up_umap(background=False) is None  # waits for the same run
    assert not t1.is_alive() and umap_is_warm()
