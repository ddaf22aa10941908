"""Tests for engine.eval.view_cloud and engine.eval.encoder: an identity pipeline's views
collapse onto their source (cosine 1, the same map position); real views spread; placement by
neighbours; a run's encoder read back from its checkpoint embeds as the run did."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import RunConfig
from engine.data import load_dataset
from engine.eval.encoder import RunEncoder
from engine.eval.view_cloud import place_by_neighbours, view_cloud
from tests.fixtures.tiny_runs import TINIER

SETTINGS = {**TINIER, "data.name": "shapes", "model.backbone": "small_cnn",
            "train.device": "cpu"}


@pytest.fixture(scope="module")
def encoder() -> RunEncoder:
    cfg = RunConfig().with_overrides(SETTINGS)
    return RunEncoder.build(cfg, load_dataset(cfg.data))


def test_identity_pipeline_collapses_onto_its_source(encoder: RunEncoder) -> None:
    test = encoder.dataset.test
    bank = test.images[:64]
    bank_h = encoder.embed(bank)
    bank_xy = np.random.default_rng(0).normal(size=(64, 2))
    cloud = view_cloud(encoder, bank[5], [[]], n=12, bank_h=bank_h, bank_xy=bank_xy)
    assert cloud.views.shape == (12, *bank[5].shape)
    np.testing.assert_allclose(cloud.cosine, 1.0, atol=1e-5)
    assert cloud.mean_cosine == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(cloud.xy, np.repeat(bank_xy[5:6], 12, 0), atol=1e-5)
    assert "neighbours" in cloud.placement


def test_real_views_spread_and_class_cosine_is_reported(encoder: RunEncoder) -> None:
    test = encoder.dataset.test
    q = 3
    same = test.images[(test.labels == test.labels[q]).nonzero().flatten()[1:20]]
    views = [[{"op": "rotation", "p": 1.0, "degrees": (-90.0, 90.0)},
              {"op": "color_jitter", "p": 1.0}]]
    cloud = view_cloud(encoder, test.images[q], views, n=16, same_class=same)
    assert cloud.xy is None and cloud.placement == ""
    assert cloud.cosine.min() < 0.999 and np.unique(cloud.cosine.round(6)).size > 8
    assert -1.0 <= cloud.class_cosine <= 1.0


def test_one_op_alone_and_the_runs_own_views(encoder: RunEncoder) -> None:
    image = encoder.dataset.test.images[0]
    alone = view_cloud(encoder, image, [[{"op": "horizontal_flip", "p": 1.0}]], n=4)
    # the same flip every time: four identical views
    assert np.allclose(alone.h, alone.h[:1], atol=1e-5)
    own = view_cloud(encoder, image, encoder.views, n=8, seed=1)
    assert own.h.shape[0] == 8 and len(encoder.views) == 2


def test_place_by_neighbours_weights_and_errors() -> None:
    bank = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    xy = np.array([[0.0, 0.0], [10.0, 0.0]])
    mid = place_by_neighbours(np.array([[1.0, 1.0]]), bank, xy, k=2)
    np.testing.assert_allclose(mid, [[5.0, 0.0]], atol=1e-4)
    near = place_by_neighbours(np.array([[1.0, 0.2]]), bank, xy, k=2)
    assert 0.0 < near[0, 0] < 5.0
    with pytest.raises(ValueError, match=r"bank_xy must be \(2, 2\)"):
        place_by_neighbours(bank, bank, xy[:1])


def test_bad_inputs_say_what(encoder: RunEncoder) -> None:
    with pytest.raises(ValueError, match="one uint8 image"):
        view_cloud(encoder, torch.rand(3, 16, 16), [[]])
    with pytest.raises(ValueError, match="both bank_h and bank_xy"):
        view_cloud(encoder, encoder.dataset.test.images[0], [[]], bank_h=np.zeros((2, 4)))


def test_encoder_from_a_run_without_checkpoint_says_so(tmp_path) -> None:  # noqa: ANN001
    from engine.train.store import RunStore

    run = RunStore(tmp_path).create(RunConfig().with_overrides(SETTINGS))
    with pytest.raises(ValueError, match="has no checkpoint yet"):
        RunEncoder.from_run(run)
