"""Neighbour search (faiss vs numpy), precision@k, and the clustering comparisons built on them."""

import numpy as np
import pytest
import torch

from engine.eval.clusters import compare_runs, neighbour_purity, neighbourhood_overlap, silhouette
from engine.eval.retrieval import (
    NeighbourIndex,
    brute_force_search,
    mean_precision_at_k,
    precision_at_k,
)


def _random(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _blobs(n_per: int = 20, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 1, d)) * 4
    x = (centres + rng.normal(size=(3, n_per, d))).reshape(-1, d)
    return x.astype(np.float32), np.repeat(np.arange(3), n_per)


def _assert_same_search(a, b):
    (sa, ia), (sb, ib) = a, b
    np.testing.assert_allclose(sa, sb, atol=1e-5)
    # indices must agree wherever the similarity is not (nearly) tied with a neighbour's
    gap = np.minimum(
        np.abs(np.diff(sb, axis=1, prepend=np.inf)), np.abs(np.diff(sb, axis=1, append=-np.inf))
    )
    distinct = gap > 1e-5
    assert distinct.mean() > 0.9
    assert np.array_equal(ia[distinct], ib[distinct])


def test_faiss_agrees_with_brute_force():
    x, q = _random(2000, 32), _random(50, 32, seed=1)
    _assert_same_search(NeighbourIndex(x).search(q, 10), brute_force_search(x, q, 10))


def test_faiss_agrees_with_brute_force_over_a_50000_image_bank():
    # the Explore page's bank of CIFAR-10 train images: clicked points are bank rows
    centres = _random(10, 128, seed=2) * 2
    bank = centres[np.arange(50_000) % 10] + _random(50_000, 128, seed=3)
    rows = np.random.default_rng(4).choice(50_000, 20, replace=False)
    sims, idx = NeighbourIndex(bank).neighbours_of(rows, 10)
    ref_sims, ref = brute_force_search(bank, bank[rows], 11)
    assert np.array_equal(ref[:, 0], rows)  # each row is its own nearest: leave it out
    _assert_same_search((sims, idx), (ref_sims[:, 1:], ref[:, 1:]))


def test_search_returns_descending_cosines_and_dtypes():
    sims, idx = NeighbourIndex(_random(100, 8)).search(_random(5, 8, seed=1), 7)
    assert sims.shape == idx.shape == (5, 7)
    assert sims.dtype == np.float32 and idx.dtype == np.int64
    assert (np.diff(sims, axis=1) <= 1e-7).all()
    assert (np.abs(sims) <= 1 + 1e-6).all()


def test_search_uses_cosine_not_dot_product():
    x = np.array([[10.0, 1.0], [0.1, 0.0]], np.float32)  # the long vector is at an angle
    sims, idx = NeighbourIndex(x).search(np.array([[1.0, 0.0]]), 1)
    assert idx.tolist() == [[1]] and sims[0, 0] == pytest.approx(1.0)


def test_exclude_self_drops_each_point_and_keeps_the_rest_in_order():
    x = _random(300, 16)
    sims, idx = NeighbourIndex(x).search(x, 5, exclude_self=True)
    assert idx.shape == (300, 5)
    assert not (idx == np.arange(300)[:, None]).any()
    bs, bi = brute_force_search(x, x, 6)
    _assert_same_search((sims, idx), (bs[:, 1:], bi[:, 1:]))


def test_exclude_self_keeps_exact_duplicates():
    x = _random(20, 4)
    x[7] = x[3]
    _, idx = NeighbourIndex(x).neighbours_of([3, 7], 1)
    assert idx.tolist() == [[7], [3]]


def test_exclude_self_needs_the_indexed_rows():
    x = _random(10, 4)
    with pytest.raises(ValueError, match="neighbours_of"):
        NeighbourIndex(x).search(x[:3], 2, exclude_self=True)


def test_k_is_clipped_to_the_index_size():
    x = _random(4, 3)
    assert NeighbourIndex(x).search(x, 10)[1].shape == (4, 4)
    assert NeighbourIndex(x).search(x, 10, exclude_self=True)[1].shape == (4, 3)
    assert brute_force_search(x, x, 10)[1].shape == (4, 4)


def test_bad_inputs():
    x = _random(10, 4)
    with pytest.raises(ValueError, match="empty"):
        NeighbourIndex(np.zeros((0, 4)))
    x_nan = x.copy()
    x_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="embeddings contain NaN"):
        NeighbourIndex(x_nan)
    with pytest.raises(ValueError, match="dimension"):
        NeighbourIndex(x).search(_random(2, 5), 1)
    with pytest.raises(ValueError, match="k must be"):
        NeighbourIndex(x).search(x, 0)


def test_torch_input_matches_numpy():
    x = _random(50, 8)
    t = torch.from_numpy(x).to(torch.bfloat16).requires_grad_()
    assert NeighbourIndex(t).search(x[:5], 3)[1][:, 0].tolist() == list(range(5))


def test_precision_at_k_hand_built():
    nb = np.array([[0, 0, 1], [1, 1, 1], [2, 0, 0], [3, 3, 3]])
    p = precision_at_k(nb, np.array([0, 1, 2, -1]))
    np.testing.assert_allclose(p[:3], [2 / 3, 1.0, 1 / 3])
    assert np.isnan(p[3])


def test_mean_precision_leave_one_out():
    # two tight pairs of triples far apart: each point has 2 same-class points
    a = np.array([[1, 0], [1, 0.01], [1, -0.01]], np.float32)
    b = np.array([[0, 1], [0.01, 1], [-0.01, 1]], np.float32)
    x = np.concatenate([a, b])
    y = np.array([0, 0, 0, 1, 1, 1])
    assert mean_precision_at_k(x, y, k=2) == pytest.approx(1.0)
    assert mean_precision_at_k(x, y, k=5) == pytest.approx(2 / 5)
    # unlabelled points are neither queries nor neighbours
    x_u = np.concatenate([x, np.array([[1, 0.005]], np.float32)])
    assert mean_precision_at_k(x_u, np.append(y, -1), k=2) == pytest.approx(1.0)
    assert neighbour_purity(x, y, k=2) == pytest.approx(1.0)


def test_silhouette_separates_good_and_bad_clusterings():
    x, y = _blobs()
    assert silhouette(x, y) > 0.8
    assert silhouette(x, np.random.default_rng(0).permutation(y)) < 0.1
    assert np.isnan(silhouette(x, np.zeros_like(y)))
    assert silhouette(x, y, sample=30) > 0.8


def test_neighbourhood_overlap():
    x, y = _blobs()
    rot, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(16, 16)))
    assert neighbourhood_overlap(x, x @ rot, k=5) == pytest.approx(1.0)  # cosine-invariant
    unrelated = _random(len(x), 16, seed=5)
    assert neighbourhood_overlap(x, unrelated, k=5) < 0.3


def test_compare_runs_report():
    x, y = _blobs()
    report = compare_runs(x, _random(len(x), 8, seed=3), y, k=5)
    assert set(report) == {
        "k",
        "precision_a",
        "precision_b",
        "silhouette_a",
        "silhouette_b",
        "overlap",
    }
    assert report["precision_a"] == pytest.approx(1.0)
    assert report["precision_b"] < 0.7
    assert report["silhouette_a"] > report["silhouette_b"]
