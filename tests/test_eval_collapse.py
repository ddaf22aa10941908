"""Collapse diagnostics on constructed embeddings with known answers, and the alarm."""

import json
import math

import numpy as np
import pytest
import torch

from engine.eval.collapse import (
    alignment,
    collapse_alarm,
    diagnostics,
    effective_rank,
    histogram,
    normalised_std,
    pair_cosines,
    singular_values,
    uniformity,
)
from engine.eval.collapse_causes import GENERAL, causes_for
from engine.methods import METHODS


def _gauss(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _two_views(z: np.ndarray, noise: float = 0.1, seed: int = 1) -> np.ndarray:
    return z + noise * _gauss(*z.shape, seed=seed)


def _constant_plus_noise(rho: float, n: int = 256, d: int = 64) -> np.ndarray:
    c = _gauss(1, d, seed=9)
    c /= np.linalg.norm(c)
    return c + rho / math.sqrt(d) * _gauss(n, d, seed=10)


# -- the metrics -------------------------------------------------------------------------------
def test_identical_vectors():
    z = np.tile(_gauss(1, 32), (100, 1))
    assert normalised_std(z) == pytest.approx(0.0, abs=1e-7)
    assert effective_rank(z) == pytest.approx(1.0, abs=1e-3)
    assert alignment(z, z) == pytest.approx(0.0, abs=1e-10)
    assert uniformity(z) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("d", [8, 64])
def test_identity_rows(d):
    z = np.eye(d)
    # each column holds one 1 and d-1 zeros: population std sqrt(1/d - 1/d^2) = sqrt(d-1)/d
    assert normalised_std(z) == pytest.approx(math.sqrt(d - 1) / d, rel=1e-6)
    assert effective_rank(z) == pytest.approx(d, rel=1e-3)


@pytest.mark.parametrize("d", [4, 32])
def test_orthonormal_cross_polytope(d):
    """The 2d unit vectors +-e_i: every coordinate is +1 once, -1 once and 0 otherwise, so its
    std is exactly 1/sqrt(d), the healthy value; all singular values are sqrt(2): rank d."""
    z = np.concatenate([np.eye(d), -np.eye(d)])
    assert normalised_std(z) == pytest.approx(1 / math.sqrt(d), rel=1e-9)
    assert effective_rank(z) == pytest.approx(d, rel=1e-3)
    np.testing.assert_allclose(singular_values(z), math.sqrt(2), rtol=1e-9)
    # pairs: d antipodal (distance^2 4), the other 2d(d-1) orthogonal (distance^2 2)
    t = 2
    expected = math.log((2 * d * (d - 1) * math.exp(-2 * t) + d * math.exp(-4 * t))
                        / (d * (2 * d - 1)))
    assert uniformity(z, t=t) == pytest.approx(expected, rel=1e-9)
    diag = diagnostics(z, z, z)
    assert diag["std_z"] / diag["std_healthy"] == pytest.approx(1.0)
    assert diag["rank_z"] == pytest.approx(d, rel=1e-3) and diag["alignment"] == 0.0
    assert diag["pos_cos_mean"] == pytest.approx(1.0)
    # each image has one antipodal partner (-1) among its 2d - 1 negatives, the rest at 0
    assert diag["neg_cos_mean"] == pytest.approx(-1 / (2 * d - 1), abs=1e-6)
    assert collapse_alarm(diag).kind == "none"


def test_rankme_of_a_known_spectrum():
    """Two equal singular values and the rest zero: p = (1/2, 1/2), exp(H) = 2."""
    z = np.zeros((10, 6))
    z[0, 0] = z[1, 1] = 3.0
    assert effective_rank(z) == pytest.approx(2.0, rel=1e-4)
    # singular values 2 and 1: p = (2/3, 1/3)
    z[1, 1] = 1.5
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert effective_rank(z) == pytest.approx(math.exp(h), rel=1e-4)


def test_identical_vectors_are_complete_collapse_in_the_diagnostics():
    z = np.tile(_gauss(1, 16), (64, 1))
    d = diagnostics(z, z, z)
    assert d["std_z"] == pytest.approx(0.0, abs=1e-7)
    assert d["rank_z"] == pytest.approx(1.0, abs=1e-3)
    assert d["rank_h"] == pytest.approx(1.0, abs=1e-3)
    assert d["pos_cos_mean"] == pytest.approx(1.0) and d["neg_cos_mean"] == pytest.approx(1.0)
    assert d["neg_hist"]["counts"][-1] == sum(d["neg_hist"]["counts"])  # all in the top bin
    assert d["spectrum_z"][0] == 1.0 and max(d["spectrum_z"][1:]) < 1e-3


def test_random_orthogonal_has_full_rank():
    q, _ = np.linalg.qr(_gauss(48, 48).astype(np.float64))
    assert effective_rank(q * 3.0) == pytest.approx(48, rel=1e-3)


def test_isotropic_gaussian_std_is_one_over_sqrt_d():
    d = 32
    assert normalised_std(_gauss(20000, d)) == pytest.approx(1 / math.sqrt(d), rel=0.02)


def test_rank_of_low_rank_embedding():
    z = _gauss(512, 2) @ _gauss(2, 64, seed=1)
    assert 1.5 < effective_rank(z) <= 2.0 + 1e-3
    assert effective_rank(np.zeros((10, 4))) == 0.0


def test_singular_values_match_svd():
    x = _gauss(1000, 16) * np.arange(1, 17)
    ref = np.linalg.svd(x.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(singular_values(x), ref, rtol=1e-6)
    assert singular_values(x[:20]).shape == (16,)
    assert singular_values(x[:10]).shape == (10,)


def test_alignment_and_uniformity_known_values():
    z = _gauss(200, 16)
    assert alignment(z, -z) == pytest.approx(4.0)  # antipodal views: ||a - b||^2 = 4
    assert alignment(z, 2 * z) == pytest.approx(0.0, abs=1e-10)  # scale is normalised away
    spread, tight = uniformity(z), uniformity(_constant_plus_noise(0.3, 200, 16))
    assert spread < tight < 0
    # two antipodal points: log exp(-t * 4)
    assert uniformity(np.array([[1.0, 0], [-1.0, 0]]), t=2) == pytest.approx(-8.0)
    assert uniformity(_gauss(3000, 8), max_points=500) < -2
    with pytest.raises(ValueError, match="at least 2"):
        uniformity(z[:1])


def test_pair_cosines():
    z = np.eye(6)
    pos, neg = pair_cosines(z, z)
    assert np.allclose(pos, 1) and neg.shape == (30,) and np.allclose(neg, 0)
    pos, neg = pair_cosines(_gauss(500, 8), _gauss(500, 8, seed=1), max_negatives=1000)
    assert pos.shape == (500,) and neg.shape == (1000,)
    assert abs(neg.mean()) < 0.05 and abs(pos.mean()) < 0.1
    z = _gauss(100, 8)
    _, neg = pair_cosines(z, z, max_negatives=500)
    assert (neg < 1 - 1e-6).all()  # a sampled negative never pairs an image with itself


def test_histogram_counts_every_value():
    v = np.concatenate([np.linspace(-1, 1, 101), [1.0000001, -1.2, 3.0]])
    h = histogram(v, bins=40)
    assert len(h["edges"]) == 41 and len(h["counts"]) == 40
    assert sum(h["counts"]) == len(v)
    assert h["edges"][0] == -1.0 and h["edges"][-1] == 1.0
    json.dumps(h)


def test_nan_and_shape_errors():
    z = _gauss(10, 4)
    z[2, 1] = np.nan
    for f in (normalised_std, effective_rank, uniformity):
        with pytest.raises(ValueError, match="contain NaN"):
            f(z)
    with pytest.raises(ValueError, match="same shape"):
        alignment(_gauss(10, 4), _gauss(9, 4))


# -- diagnostics and the alarm ------------------------------------------------------------------
def test_diagnostics_is_flat_json():
    z0 = _gauss(256, 64)
    h = torch.relu(torch.from_numpy(_gauss(256, 128, seed=3)))
    d = diagnostics(h, z0, _two_views(z0))
    json.dumps(d, allow_nan=False)
    assert d["dim_z"] == 64 and d["dim_h"] == 128 and d["n"] == 256
    assert d["std_healthy"] == pytest.approx(1 / 8)
    assert len(d["spectrum_z"]) == 64 and d["spectrum_z"][0] == 1.0
    assert len(d["spectrum_h"]) == 128
    assert sum(d["pos_hist"]["counts"]) == 256
    assert d["pos_cos_mean"] > 0.9 and abs(d["neg_cos_mean"]) < 0.05
    assert diagnostics(None, z0, z0)["rank_h"] is None
    with pytest.raises(ValueError, match="rows"):
        diagnostics(h[:10], z0, z0)


def test_identical_embeddings_raise_a_complete_alarm():
    z = np.tile(_gauss(1, 64), (256, 1))
    alarm = collapse_alarm(diagnostics(None, z, z), method="simsiam")
    assert (alarm.kind, alarm.severity) == ("complete", "critical")
    assert "same embedding" in alarm.message
    assert alarm.causes[0].startswith("Stop-gradient")


def test_constant_plus_small_noise_is_complete_collapse():
    z = _constant_plus_noise(0.1)
    assert collapse_alarm(diagnostics(None, z, _two_views(z, 0.01))).kind == "complete"
    z = _constant_plus_noise(0.3)  # drifting, not yet collapsed
    alarm = collapse_alarm(diagnostics(None, z, _two_views(z, 0.01)))
    assert (alarm.kind, alarm.severity) == ("complete", "warning")


def test_rank_two_embedding_raises_a_dimensional_alarm():
    z = _gauss(256, 2) @ _gauss(2, 64, seed=1)
    d = diagnostics(None, z, _two_views(z, 0.01))
    alarm = collapse_alarm(d, method="barlow_twins")
    assert (alarm.kind, alarm.severity) == ("dimensional", "critical")
    assert "2.0 of the 64" in alarm.message
    assert any("Off-diagonal" in c for c in alarm.causes)
    # supervised objectives are meant to concentrate classes: no dimensional verdict
    assert collapse_alarm(d, method="supcon").kind == "none"


def test_embeddings_on_one_line_are_complete_collapse_unless_supervised():
    v = _gauss(1, 64)
    z = np.where(np.arange(256)[:, None] % 2 == 0, v, -v)  # two antipodal points
    d = diagnostics(None, z, z)
    alarm = collapse_alarm(d, method="byol")
    assert (alarm.kind, alarm.severity) == ("complete", "critical")
    assert "one direction" in alarm.message
    assert collapse_alarm(d, method="supcon").kind == "none"  # two classes, perfectly apart


def test_collapsed_backbone_raises_a_dimensional_alarm():
    z0 = _gauss(256, 64)
    h = _gauss(256, 1) @ _gauss(1, 128, seed=4)
    assert collapse_alarm(diagnostics(h, z0, _two_views(z0))).kind == "dimensional"


def test_partial_dimensional_collapse_is_a_warning():
    z = _gauss(256, 64) * np.arange(1, 65) ** -1.3  # singular values ~ i^-1.3
    alarm = collapse_alarm(diagnostics(None, z, _two_views(z, 0.001)))
    assert (alarm.kind, alarm.severity) == ("dimensional", "warning")


def test_healthy_gaussian_has_no_alarm():
    z0 = _gauss(256, 64)
    h = np.abs(_gauss(256, 128, seed=2))
    for method in (None, "simclr", "byol", "unknown_method"):
        alarm = collapse_alarm(diagnostics(h, z0, _two_views(z0)), method=method)
        assert (alarm.kind, alarm.severity, alarm.causes) == ("none", "none", [])
        assert "No sign of collapse" in alarm.message


def test_causes_fall_back_to_generic_texts():
    assert causes_for("rotation", "complete") == GENERAL["complete"]
    assert "no term that spreads h" in causes_for("mim", "dimensional")[0]
    assert causes_for(None, "dimensional") == GENERAL["dimensional"]
    assert causes_for("MoCo", "complete")[0] == METHODS.get("moco").collapse_causes["complete"][0]
    assert causes_for("byol", "complete")[-len(GENERAL["complete"]) :] == GENERAL["complete"]
    for method in METHODS.names():
        assert set(METHODS.get(method).collapse_causes) <= {"complete", "dimensional"}, method


def test_untrained_network_is_not_called_collapsed():
    """A random-init SimCLR network maps shapes almost onto one point (raw verdict: complete
    collapse); the step-0 probe must not raise that alarm, and a later probe of the same
    weights must."""
    from engine.config import RunConfig
    from engine.data import load_dataset
    from engine.train.loop import Trainer

    cfg = RunConfig().with_overrides({
        "train.device": "cpu", "data.train_size": 512, "data.test_size": 128,
        "eval.probe_size": 128,
    })
    trainer = Trainer(cfg, load_dataset(cfg.data))
    at_start = trainer.probe(0)
    assert at_start["alarm"]["kind"] == "none"
    assert "Untrained" in at_start["alarm"]["message"]
    later = trainer.probe(50)  # same weights, judged as if training had produced them
    assert later["alarm"]["kind"] == "complete", later["alarm"]
