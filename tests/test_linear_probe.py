"""Linear probe on frozen features: exact on separable sets, chance on noise, ignores -1."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.eval.linear_probe import linear_probe


def blobs(n: int, classes: int, dim: int, spread: float, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 5
    labels = rng.integers(0, classes, n)
    return centres[labels] + spread * rng.normal(size=(n, dim)), labels


def test_separable_classes_are_learned() -> None:
    x, y = blobs(600, 5, 16, 0.5, 0)
    assert linear_probe(x[:400], y[:400], x[400:], y[400:], epochs=50, lr=1e-2) == 1.0


def test_noise_gives_chance() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2000, 8)), rng.integers(0, 4, 2000)
    acc = linear_probe(x[:1000], y[:1000], x[1000:], y[1000:], epochs=20)
    assert acc == pytest.approx(0.25, abs=0.06)


def test_unlabelled_rows_are_ignored_and_empty_gives_zero() -> None:
    x, y = blobs(400, 3, 8, 0.3, 2)
    y_train = y[:200].copy()
    y_train[::2] = -1  # half unlabelled
    assert linear_probe(x[:200], y_train, x[200:], y[200:], epochs=50) == 1.0
    assert linear_probe(x[:200], np.full(200, -1), x[200:], y[200:]) == 0.0
    with pytest.raises(ValueError, match="features"):
        linear_probe(x[:10], y[:10], x[:10, :3], y[:10])


def test_cheap_on_cpu() -> None:
    x, y = blobs(10000, 10, 256, 3.0, 3)
    t0 = time.perf_counter()
    acc = linear_probe(x[:8000], y[:8000], x[8000:], y[8000:], epochs=30)
    assert acc > 0.9
    assert time.perf_counter() - t0 < 30
