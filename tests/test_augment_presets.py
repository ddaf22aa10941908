"""Tests for engine.augment's presets, config (disable, explicit views) and preview."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.augment import (
    Augmenter,
    list_presets,
    preset_info,
    preset_views,
    preview_grid,
    resolve_views,
)
from engine.config import AugmentConfig
from tests.fixtures.augment_inputs import IDENTITY_NORM, random_images, seeded


def test_presets_listed_and_documented() -> None:
    names = list_presets()
    for required in (
        "simclr",
        "mocov2",
        "byol",
        "simclr_no_colour",
        "colour_invariant",
        "crop_flip",
        "fixmatch",
        "none",
    ):
        assert required in names
    for name in names:
        info = preset_info(name)
        assert info["title"] and info["description"]
        assert name == "none" or "arxiv.org" in info["source"]
        assert len(info["views"]) == 2


def test_byol_views_are_asymmetric() -> None:
    v0, v1 = preset_views("byol")
    blur = [next(op for op in v if op["op"] == "gaussian_blur")["p"] for v in (v0, v1)]
    sol = [next(op for op in v if op["op"] == "solarize")["p"] for v in (v0, v1)]
    assert blur == [1.0, 0.1] and sol == [0.0, 0.2]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_runs(preset: str, channels: int) -> None:
    x = random_images(6, channels, 32)
    aug = Augmenter(resolve_views(AugmentConfig(preset=preset)), mean=(0.5,), std=(0.25,))
    views = aug.views(x, 2, seeded())
    for v in views:
        assert v.shape == x.shape and v.dtype == torch.float32 and bool(torch.isfinite(v).all())
        assert v.min() >= -2.0 - 1e-6 and v.max() <= 2.0 + 1e-6  # (0 - .5) / .25 .. (1 - .5) / .25


def test_colour_invariant_preset_hides_an_objects_colour() -> None:
    """A red image stays red in most SimCLR views (hue jitter 0.1); the colour-invariant preset
    must leave red the dominant channel in well under half of its views, so no method can
    match two views by colour alone."""
    red = torch.zeros(512, 3, 8, 8, dtype=torch.uint8)
    red[:, 0], red[:, 1], red[:, 2] = 200, 40, 40

    def still_red(preset: str) -> float:
        aug = Augmenter(preset_views(preset), **IDENTITY_NORM)
        mean = torch.cat(aug.views(red, 2, seeded())).mean(dim=(2, 3))  # (1024, 3)
        return float((mean[:, 0] > mean[:, 1:].max(dim=1).values + 0.05).float().mean())

    assert still_red("simclr") > 0.7
    assert still_red("colour_invariant") < 0.4


def test_presets_run_on_non_square_images() -> None:
    x = random_images(4, 3, 24)[:, :, :, :20].contiguous()  # (4, 3, 24, 20)
    for preset in list_presets():
        aug = Augmenter(preset_views(preset), **IDENTITY_NORM)
        assert all(v.shape == x.shape for v in aug.views(x, 2, seeded()))


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown augmentation preset 'simclr2'; known: .*simclr"):
        preset_views("simclr2")


def test_disable_removes_ops_everywhere() -> None:
    cfg = AugmentConfig(preset="byol", disable=("color_jitter", "gaussian_blur"))
    views = resolve_views(cfg)
    assert len(views) == 2
    for view in views:
        names = {op["op"] for op in view}
        assert "color_jitter" not in names and "gaussian_blur" not in names
        assert "random_resized_crop" in names
    with pytest.raises(ValueError, match="augment.disable names unknown op"):
        resolve_views(AugmentConfig(disable=("colour_jitter",)))


def test_explicit_views_replace_the_preset() -> None:
    cfg = AugmentConfig(preset="simclr", views=(({"op": "horizontal_flip", "p": 1.0},),))
    assert resolve_views(cfg) == [[{"op": "horizontal_flip", "p": 1.0}]]
    with pytest.raises(ValueError, match="unknown augmentation op"):
        resolve_views(AugmentConfig(views=(({"op": "nope"},),)))


@pytest.mark.parametrize("channels", [1, 3])
def test_preview_grid_shape(channels: int) -> None:
    x = random_images(10, channels, 16)
    views = preset_views("byol")
    grid = preview_grid(x, views, n=4, seed=1)
    assert isinstance(grid, np.ndarray) and grid.dtype == np.uint8
    assert grid.shape == (4 * 18 + 2, 3 * 18 + 2, 3)
    assert np.array_equal(grid[2:18, 2:18], x[0].expand(3, -1, -1).permute(1, 2, 0).numpy())
    assert np.array_equal(grid, preview_grid(x, views, n=4, seed=1))


def test_preview_shows_what_trains() -> None:
    x = random_images(4, 3, 16)
    views = preset_views("simclr")
    grid = preview_grid(x, views, n=4, seed=5, pad=0)
    aug = Augmenter(views, **IDENTITY_NORM)
    v0 = aug.denormalise(aug.view(x, 0, torch.Generator().manual_seed(5)))
    assert np.array_equal(grid[:16, 16:32], v0[0].permute(1, 2, 0).numpy())
