"""Tests for the ops added from BYOL's and FixMatch's lists: shear, perspective,
autocontrast, equalize, sharpness (range, shape, per-sample parameters, agreement with
torchvision where it has the same op)."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from engine.augment import OPS, geometry, validate_view
from tests.fixtures.augment_inputs import one_view, random_images

NEW_OPS = ("shear", "perspective", "autocontrast", "equalize", "sharpness")


def test_new_ops_are_declared_with_groups() -> None:
    groups = {name: OPS[name].group for name in NEW_OPS}
    assert groups == {"shear": "geometry", "perspective": "geometry", "autocontrast": "colour",
                      "equalize": "colour", "sharpness": "filter"}
    with pytest.raises(ValueError, match=r"perspective.distortion = 1.0 is out of range"):
        validate_view([{"op": "perspective", "distortion": 1.0}])
    with pytest.raises(ValueError, match=r"sharpness.factor .* out of range"):
        validate_view([{"op": "sharpness", "factor": (0.5, 5.0)}])


@pytest.mark.parametrize("name", NEW_OPS)
@pytest.mark.parametrize("channels", [1, 3])
def test_new_op_keeps_shape_and_range(name: str, channels: int) -> None:
    x = random_images(8, channels, 16)
    out = one_view([{"op": name, "p": 1.0}], x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, x.float() / 255), name


@pytest.mark.parametrize(
    "op",
    [
        {"op": "shear", "p": 1.0},
        {"op": "perspective", "p": 1.0},
        {"op": "sharpness", "p": 1.0},
    ],
)
def test_random_ops_draw_per_sample_parameters(op: dict) -> None:
    x = random_images(1, 3, 16).expand(12, -1, -1, -1).contiguous()
    out = one_view([op], x)
    distinct = {tuple((row * 255).round().int().tolist()) for row in out.flatten(1)}
    assert len(distinct) == 12, op["op"]


def test_parameterless_ops_follow_their_probability() -> None:
    x = random_images(1, 3, 16).expand(200, -1, -1, -1).contiguous()
    for name in ("equalize", "autocontrast"):
        out = one_view([{"op": name, "p": 0.5}], x)
        changed = (out != x.float() / 255).flatten(1).any(1).float().mean()
        assert 0.35 < float(changed) < 0.65, name


def test_zero_strength_geometry_is_identity() -> None:
    x = random_images(4, 3, 16)
    for op in ({"op": "shear", "p": 1.0, "x": (0, 0), "y": (0, 0)},
               {"op": "perspective", "p": 1.0, "distortion": 0.0}):
        torch.testing.assert_close(one_view([op], x), x.float() / 255, atol=1e-5, rtol=0)


def test_shear_matches_torchvision_affine() -> None:
    x = random_images(1, 3, 32)
    ours = one_view([{"op": "shear", "p": 1.0, "x": (20.0, 20.0), "y": (0.0, 0.0)}], x)
    ref = TF.affine(x.float() / 255, angle=0.0, translate=[0, 0], scale=1.0, shear=[20.0, 0.0],
                    interpolation=TF.InterpolationMode.BILINEAR)
    inner = (slice(None), slice(None), slice(4, -4), slice(8, -8))  # away from the filled corners
    assert (ours[inner] - ref[inner]).abs().mean() < 0.02


def test_perspective_maps_output_corners_to_image_corners() -> None:
    g = torch.Generator().manual_seed(0)
    h = geometry.perspective(g, 5, 0.5, torch.device("cpu"))
    corners = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])
    # The inverse homography takes the image corners to the output corners, which lie inside.
    inv = torch.linalg.inv(h)
    out = inv @ corners.T  # (5, 3, 4)
    xy = out[:, :2] / out[:, 2:]
    assert bool((xy.abs() <= 1.0 + 1e-5).all()) and bool((xy.abs() >= 0.5 - 1e-5).all())
    # Distortion 0.5 leaves black wedges: the corners of the view are filled with 0.
    x = torch.full((64, 3, 16, 16), 200, dtype=torch.uint8)
    view = one_view([{"op": "perspective", "p": 1.0, "distortion": 0.5}], x)
    assert float((view == 0).float().mean()) > 0.01


def test_equalize_and_sharpness_match_torchvision() -> None:
    x = random_images(6, 3, 16)
    eq = one_view([{"op": "equalize", "p": 1.0}], x)
    assert torch.equal((eq * 255).round().to(torch.uint8), TF.equalize(x))
    sharp = one_view([{"op": "sharpness", "p": 1.0, "factor": (1.7, 1.7)}], x)
    ref = TF.adjust_sharpness(x.float() / 255, 1.7)
    torch.testing.assert_close(sharp, ref, atol=1e-5, rtol=0)
