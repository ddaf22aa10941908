"""Tests for engine.augment.export: preset JSON round trip; torchvision and kornia code for
every preset builds, runs and stays in range; the per-op table draws parameters in the op's
own ranges in both libraries (engine/augment/export_table.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine.augment import OPS, list_presets, preset_info, preset_views, validate_view
from engine.augment.export import kornia_code, preset_json, read_preset_json, torchvision_code
from engine.augment.export_table import TABLE, template_values

pytest.importorskip("kornia")
N = 256  # parameter draws per op


def _exec(code: str) -> dict:
    ns: dict = {}
    exec(compile(code, "<exported>", "exec"), ns)  # noqa: S102 — the code under test
    return ns


def test_every_op_has_a_row_in_the_table() -> None:
    assert set(TABLE) == set(OPS)


def test_preset_json_round_trip() -> None:
    for name in list_presets():
        info = preset_info(name)
        text = preset_json(info["views"], info["title"], info["description"], info["source"])
        back = read_preset_json(text)
        assert back["views"] == info["views"] and back["title"] == info["title"], name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a JSON object"),
        ('{"views": []}', "non-empty 'views'"),
        ('{"views": [[{"op": "blurr"}]]}', "view 0: unknown augmentation op 'blurr'"),
        ('{"views": [[], [{"op": "solarize", "threshold": 2}]]}', "view 1: solarize.threshold"),
    ],
)
def test_read_preset_json_errors_say_what(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_preset_json(text)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("preset", list_presets())
def test_exported_pipelines_of_every_preset_build_run_and_stay_in_range(
    preset: str, channels: int
) -> None:
    torch.manual_seed(0)  # kornia and torchvision draw from the global generator
    views = preset_views(preset)
    x = torch.randint(0, 256, (6, channels, 32, 32), dtype=torch.uint8)
    tv = _exec(torchvision_code(views, 32, preset, channels=channels))["views"]
    k = _exec(kornia_code(views, 32, preset, channels=channels))
    assert len(tv) == len(k["views"]) == len(views)
    for i, pipeline in enumerate(tv):
        out = torch.stack([pipeline(img) for img in x])
        assert out.shape == x.shape and out.dtype == torch.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        kv = k["view"](x.float() / 255, i)
        assert kv.shape == x.shape and bool(torch.isfinite(kv).all())
        assert float(kv.min()) >= 0.0 and float(kv.max()) <= 1.0


def test_every_op_exports_and_runs_in_both_libraries() -> None:
    view = validate_view([{"op": name, "p": 0.7} for name in OPS])
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    (tv,) = _exec(torchvision_code([view], 32))["views"]
    assert all(0.0 <= float(tv(img).min()) and float(tv(img).max()) <= 1.0 for img in x)
    out = _exec(kornia_code([view], 32))["view"](x.float() / 255, 0)
    assert out.shape == x.shape


def test_not_exact_rows_say_so_in_a_comment() -> None:
    code = torchvision_code([validate_view([{"op": "cutout"}, {"op": "sharpness"}])], 32)
    assert code.count("# NOT EXACT:") == 2
    exact = torchvision_code([validate_view([{"op": "sharpness", "factor": (1.5, 1.5)}])], 32)
    assert "NOT EXACT" not in exact
    k = kornia_code([validate_view([{"op": "random_erasing", "noise": True}])], 32)
    assert "# NOT EXACT: kornia erases with a constant value" in k


# ---- the table: the same op with the same parameter ranges -----------------------------------
def _one(op: dict, size: int = 32) -> tuple[object, object]:
    """(torchvision transform, kornia module) exported for a view holding only ``op``."""
    view = validate_view([op])
    tv = _exec(torchvision_code([view], size))["view_0"].transforms[2]
    tv = tv.transforms[0] if type(tv).__name__ == "RandomApply" else tv
    kornia = _exec(kornia_code([view], size))["view_0"][0]
    return tv, kornia


def _tv_draws(t: object, key: str, size: int = 32) -> torch.Tensor:
    img = torch.rand(3, size, size)
    return torch.tensor([float(_pick(t.make_params([img])[key])) for _ in range(N)])


def _pick(v: object) -> float:
    return v[0] if isinstance(v, list | tuple) else v


def _kornia_draws(k: torch.nn.Module, key: str, size: int = 32) -> torch.Tensor:
    k(torch.rand(N, 3, size, size))
    return k._params[key].float()


def _spans(draws: torch.Tensor, lo: float, hi: float, tol: float = 1e-4) -> None:
    assert float(draws.min()) >= lo - tol and float(draws.max()) <= hi + tol
    width = hi - lo
    assert float(draws.min()) <= lo + 0.1 * width and float(draws.max()) >= hi - 0.1 * width


def test_colour_jitter_factors_match() -> None:
    op = {"op": "color_jitter", "p": 1.0, "brightness": 0.4, "contrast": 0.3,
          "saturation": 0.2, "hue": 0.1}
    tv, k = _one(op)
    for name in ("brightness", "contrast", "saturation"):
        s = op[name]
        _spans(_tv_draws(tv, f"{name}_factor"), 1 - s, 1 + s)
        _spans(_kornia_draws(k, f"{name}_factor"), 1 - s, 1 + s)
    _spans(_tv_draws(tv, "hue_factor"), -0.1, 0.1)
    _spans(_kornia_draws(k, "hue_factor"), -0.1, 0.1)


def test_rotation_and_shear_angles_match() -> None:
    tv, k = _one({"op": "rotation", "p": 1.0, "degrees": (-20.0, 10.0)})
    _spans(_tv_draws(tv, "angle"), -20.0, 10.0)
    _spans(_kornia_draws(k, "angle"), -20.0, 10.0)
    assert k.p == 1.0
    tv, k = _one({"op": "shear", "p": 1.0, "x": (-25.0, 5.0), "y": (0.0, 0.0)})
    _spans(_tv_draws(tv, "shear"), -25.0, 5.0)
    _spans(_kornia_draws(k, "shear_x"), -25.0, 5.0)


def test_blur_sigma_and_kernel_match() -> None:
    op = validate_view([{"op": "gaussian_blur", "p": 1.0, "sigma": (0.3, 1.5),
                         "kernel_frac": 0.25}])[0]
    tv, k = _one(op)
    kernel = template_values(op, 32)["kernel"]
    assert kernel == 9 and list(tv.kernel_size) == [kernel, kernel]
    _spans(_tv_draws(tv, "sigma"), 0.3, 1.5)
    _spans(_kornia_draws(k, "sigma"), 0.3, 1.5)


def test_crop_area_fraction_matches() -> None:
    tv, k = _one({"op": "random_resized_crop", "scale": (0.3, 0.6)})
    img = torch.rand(3, 32, 32)
    areas = []
    for _ in range(N):
        p = tv.make_params([img])
        areas.append(p["height"] * p["width"] / 32**2)
    # torchvision rounds sides to whole pixels: allow a pixel's worth on each side
    assert 0.3 - 0.07 <= min(areas) and max(areas) <= 0.6 + 0.07
    k(torch.rand(N, 3, 32, 32))
    src = k._params["src"]  # (N, 4, 2) corners in pixels, inclusive
    side = src[:, 2] - src[:, 0] + 1
    frac = side[:, 0] * side[:, 1] / 32**2
    assert float(frac.min()) >= 0.3 - 0.07 and float(frac.max()) <= 0.6 + 0.07


def test_fixed_parameters_match() -> None:
    tv, k = _one({"op": "solarize", "p": 0.3, "threshold": 0.7})
    assert tv.threshold == 0.7 and tv.p == 0.3 and k.p == 0.3
    drawn = _kornia_draws(k, "thresholds")
    assert drawn.numel() > 0 and torch.allclose(drawn, torch.full_like(drawn, 0.7))
    tv, k = _one({"op": "posterize", "p": 1.0, "bits": 3})
    assert tv.bits == 3 and bool((_kornia_draws(k, "bits_factor") == 3).all())
    tv, k = _one({"op": "perspective", "p": 0.4, "distortion": 0.6})
    assert tv.distortion_scale == 0.6 and tv.p == 0.4 and k.p == 0.4
    tv, k = _one({"op": "sharpness", "p": 1.0, "factor": (0.5, 1.5)})
    assert tv.sharpness_factor == 1.0  # the middle: torchvision takes one factor (NOT EXACT)
    _spans(_kornia_draws(k, "sharpness"), 0.5, 1.5)
    tv, k = _one({"op": "gaussian_noise", "p": 1.0, "sigma": 0.1})
    assert tv.sigma == 0.1 and tv.clip


def test_erasing_area_fraction_matches() -> None:
    tv, k = _one({"op": "random_erasing", "p": 1.0, "scale": (0.05, 0.2), "ratio": (0.5, 2.0)})
    assert tuple(tv.scale) == (0.05, 0.2) and tuple(tv.ratio) == (0.5, 2.0)
    k(torch.rand(N, 3, 32, 32))
    frac = k._params["widths"] * k._params["heights"] / 32**2
    assert float(frac.min()) >= 0.05 * 0.7 and float(frac.max()) <= 0.2 * 1.3


def test_translate_pad_is_the_largest_shift() -> None:
    tv, k = _one({"op": "random_translate", "fraction": 0.125})
    assert tv.transforms[0].padding == [4, 4, 4, 4] or tv.transforms[0].padding == 4
    assert math.isclose(template_values({"op": "random_translate", "p": 1.0,
                                         "fraction": 0.125}, 32)["pad"], 4)


def test_preset_json_is_what_the_preset_files_hold() -> None:
    text = preset_json(preset_views("byol"), "BYOL")
    data = json.loads(text)
    assert set(data) == {"title", "description", "source", "views"} and len(data["views"]) == 2
