"""Map quality: kNN preservation and agreement on hand-built maps, map shift under motion."""

import numpy as np
import pytest

from engine.eval.map_quality import knn_preservation, map_agreement, map_neighbours, map_shift


def _half_circle(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors at random angles in [0, pi) and the map that unrolls them onto a line:
    cosine distance 1 - cos(dtheta) grows with |dtheta|, so the neighbours are the same."""
    theta = np.random.default_rng(seed).uniform(0, np.pi, n)
    feats = np.stack([np.cos(theta), np.sin(theta)], 1).astype(np.float32)
    return feats, np.stack([theta, np.zeros(n)], 1).astype(np.float32)


def test_a_map_that_keeps_every_neighbourhood_scores_one():
    feats, line = _half_circle()
    assert knn_preservation(feats, line, k=10) == pytest.approx(1.0)
    assert map_agreement(line, line * 3 + 7, k=10) == pytest.approx(1.0)


def test_a_random_map_keeps_about_k_over_n():
    feats, line = _half_circle(n=1000)
    shuffled = line[np.random.default_rng(1).permutation(1000)]
    assert knn_preservation(feats, shuffled, k=10) < 0.05
    assert map_agreement(line, shuffled, k=10) < 0.05


def test_map_neighbours_leave_each_point_out():
    xy = np.array([[0, 0], [1, 0], [3, 0], [7, 0]], np.float32)
    assert map_neighbours(xy, 2).tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    assert map_neighbours(xy, 10).shape == (4, 3)


def test_map_shift_sees_motion_not_scale():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(500, 2))
    assert map_shift(xy, xy * 5 + 3) == pytest.approx(0.0, abs=1e-6)
    assert map_shift(xy, xy + 0.05 * rng.normal(size=xy.shape)) < 0.1
    assert map_shift(xy, xy @ np.array([[0, -1], [1, 0]])) > 1.0  # a quarter turn
    with pytest.raises(ValueError, match="differ in shape"):
        map_shift(xy, xy[:10])
