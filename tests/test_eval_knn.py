"""Weighted kNN (Wu et al. 2018): exact votes on hand-built vector sets."""

import numpy as np
import pytest
import torch

from engine.eval.knn import knn_predict, knn_top1

D = 8


def _unit(i: int, d: int = D) -> np.ndarray:
    v = np.zeros(d, np.float32)
    v[i] = 1.0
    return v


def _at_cos(c: float, other_axis: int) -> np.ndarray:
    """A unit vector with cosine ``c`` to axis 0, tilted towards ``other_axis``."""
    return c * _unit(0) + np.sqrt(1 - c * c) * _unit(other_axis)


def _three_clusters(n_per: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([_unit(c) + 0.05 * rng.normal(size=(n_per, D)) for c in range(3)])
    return x.astype(np.float32), np.repeat(np.arange(3), n_per)


def test_clusters_along_axes_are_classified_exactly():
    x, y = _three_clusters()
    q, qy = _three_clusters(seed=1)
    assert np.array_equal(knn_predict(x, y, q, k=5), qy)
    assert knn_top1(x, y, q, qy, k=5) == 1.0


@pytest.mark.parametrize(("temperature", "expected"), [(0.1, 0), (1.0, 1)])
def test_vote_weights_are_exp_cos_over_t(temperature, expected):
    # class 0: one neighbour at cos 0.9; class 1: two at cos 0.8.
    # T=0.1: e^9 = 8103 > 2 e^8 = 5962 -> 0;  T=1: e^0.9 = 2.46 < 2 e^0.8 = 4.45 -> 1
    bank = np.stack([_at_cos(0.9, 1), _at_cos(0.8, 2), _at_cos(0.8, 3), _unit(5)])
    labels = np.array([0, 1, 1, 2])
    pred = knn_predict(bank, labels, _unit(0)[None], k=3, temperature=temperature)
    assert pred.tolist() == [expected]


def test_query_between_two_classes_follows_the_counts():
    # q is exactly between e0 and e1: every neighbour has the same weight, so counts decide
    bank = np.stack([_unit(0), _unit(0), _unit(1), _unit(2)])
    q = ((_unit(0) + _unit(1)) / np.sqrt(2))[None]
    assert knn_predict(bank, np.array([1, 1, 0, 2]), q, k=3).tolist() == [1]
    assert knn_predict(bank, np.array([0, 0, 1, 2]), q, k=3).tolist() == [0]


def test_unlabelled_bank_rows_are_ignored():
    # five unlabelled copies of the query would win every vote if they counted
    bank = np.stack([_unit(0)] * 5 + [_at_cos(0.5, 1), _unit(2)])
    labels = np.array([-1] * 5 + [1, 2])
    assert knn_predict(bank, labels, _unit(0)[None], k=3).tolist() == [1]


def test_unlabelled_test_samples_are_not_scored():
    x, y = _three_clusters()
    q, qy = _three_clusters(seed=1)
    qy[:5] = -1
    wrong = q.copy()
    wrong[:5] = _unit(2)  # would be misclassified if scored
    assert knn_top1(x, y, wrong, qy, k=5) == 1.0


def test_accuracy_counts_mistakes():
    x, y = _three_clusters()
    q, qy = _three_clusters(seed=1)
    qy[:10] = 2  # the class-0 queries now carry a wrong label
    assert knn_top1(x, y, q, qy, k=5) == pytest.approx(20 / 30)


def test_k_larger_than_bank_is_clipped_and_torch_inputs_work():
    x, y = _three_clusters(n_per=2)
    q, qy = _three_clusters(n_per=2, seed=1)
    pred = knn_predict(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(q), k=100)
    assert pred.shape == (6,)
    assert np.array_equal(pred, knn_predict(x, y, q, k=6))


def test_small_temperature_does_not_overflow():
    x, y = _three_clusters()
    q, qy = _three_clusters(seed=1)
    assert knn_top1(x, y, q, qy, k=5, temperature=1e-4) == 1.0


def test_num_classes_fixes_the_score_width():
    x, y = _three_clusters()
    pred = knn_predict(x, y, x[:3], k=3, num_classes=10)
    assert pred.max() < 3
    with pytest.raises(ValueError, match="num_classes"):
        knn_predict(x, y, x[:3], num_classes=2)


def test_bad_inputs_raise_clear_errors():
    x, y = _three_clusters()
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="embeddings contain NaN"):
        knn_predict(bad, y, x)
    with pytest.raises(ValueError, match="embeddings contain NaN"):
        knn_predict(x, y, bad)
    with pytest.raises(ValueError, match="empty"):
        knn_predict(np.zeros((0, D)), np.zeros(0), x)
    with pytest.raises(ValueError, match="no labelled"):
        knn_predict(x, -np.ones_like(y), x)
    with pytest.raises(ValueError, match="no labelled test"):
        knn_top1(x, y, x, -np.ones_like(y))
    with pytest.raises(ValueError, match="shape"):
        knn_predict(x, y[:-1], x)
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(x, y, x, temperature=0)
