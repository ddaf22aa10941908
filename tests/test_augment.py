"""Tests for engine.augment: declaration, validation, per-op semantics, fused paths (presets,
config and preview: test_augment_presets.py)."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from engine.augment import (
    OPS,
    Augmenter,
    OpSpec,
    Param,
    colour,
    preset_views,
    validate_view,
)
from tests.fixtures.augment_inputs import IDENTITY_NORM, one_view, random_images, seeded


# ---- declaration and validation -----------------------------------------------------------
def test_declaration_is_complete_and_defaults_validate() -> None:
    required = {
        "random_resized_crop",
        "horizontal_flip",
        "color_jitter",
        "grayscale",
        "gaussian_blur",
        "solarize",
        "rotation",
        "random_erasing",
        "gaussian_noise",
        "randaugment",
        "cutout",
        "random_translate",
    }
    assert required <= set(OPS)
    for name, spec in OPS.items():
        assert isinstance(spec, OpSpec) and spec.name == name and spec.help
        assert 0.0 <= spec.p <= 1.0
        for param in spec.params.values():
            assert isinstance(param, Param) and param.help
            assert param.kind in ("float", "int", "range", "bool")
        (filled,) = validate_view([{"op": name}])
        assert filled["p"] == spec.p and set(filled) == {"op", "p", *spec.params}


def test_validate_fills_defaults_and_coerces_ranges() -> None:
    (op,) = validate_view([{"op": "random_resized_crop", "scale": [0.2, 1]}])
    assert op == {
        "op": "random_resized_crop",
        "p": 1.0,
        "scale": (0.2, 1.0),
        "ratio": OPS["random_resized_crop"].params["ratio"].default,
    }


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "colour_jiter"}], "unknown augmentation op 'colour_jiter'"),
        ([{"op": "color_jitter", "hue": 0.7}], "color_jitter.hue = 0.7 is out of range [0.0, 0.5]"),
        (
            [{"op": "color_jitter", "brightnes": 0.4}],
            "color_jitter: unknown parameter(s) brightnes",
        ),
        ([{"op": "grayscale", "p": 1.5}], "grayscale.p = 1.5 is out of range"),
        ([{"op": "random_resized_crop", "scale": (0.9, 0.2)}], "low end 0.9 is above high end"),
        ([{"op": "random_resized_crop", "scale": 0.5}], "must be a (low, high) pair"),
        ([{"op": "randaugment", "n": 1.5}], "randaugment.n must be a whole number"),
        ([{"op": "rotation", "reflect": 1}], "rotation.reflect must be true or false"),
        ([{"p": 0.5}], "unknown augmentation op None"),
        ({"op": "grayscale"}, "a view must be a list of ops"),
    ],
)
def test_validation_errors_are_clear(ops: list[dict], message: str) -> None:
    with pytest.raises(ValueError) as err:
        validate_view(ops)
    assert message in str(err.value)


def test_unknown_op_message_lists_known_ops() -> None:
    with pytest.raises(ValueError, match="known: .*horizontal_flip"):
        validate_view([{"op": "flip"}])


# ---- pipeline contract --------------------------------------------------------------------
def test_output_dtype_shape_device_and_normalisation() -> None:
    x = random_images(4, 3, 12)
    aug = Augmenter(preset_views("none"), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    (v0, v1) = aug.views(x, 2, seeded())
    assert v0.dtype == torch.float32 and v0.shape == x.shape and v0.device == x.device
    expected = (x.float() / 255 - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2, 0.25, 0.3]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(v0, expected)
    torch.testing.assert_close(aug.normalise(x), expected)
    assert torch.equal(aug.denormalise(aug.normalise(x)), x)


def test_bad_inputs_raise() -> None:
    aug = Augmenter(preset_views("simclr"), mean=(0.5,) * 3, std=(0.25,) * 3)
    with pytest.raises(ValueError, match="uint8"):
        aug.view(torch.rand(2, 3, 8, 8), 0, seeded())
    with pytest.raises(ValueError, match="1 channel"):
        aug.view(random_images(2, 1, 8), 0, seeded())
    with pytest.raises(ValueError, match="std must be positive"):
        Augmenter([[]], mean=(0.0,), std=(0.0,))


def test_determinism_same_seed_same_views_other_seed_other_views() -> None:
    x = random_images(16, 3, 16)
    for preset in ("simclr", "byol", "fixmatch"):
        aug = Augmenter(preset_views(preset), **IDENTITY_NORM)
        a = aug.views(x, 2, seeded(7))
        b = aug.views(x, 2, seeded(7))
        c = aug.views(x, 2, seeded(8))
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True)), preset
        assert not torch.equal(a[0], c[0]), preset


def test_every_sample_gets_its_own_parameters() -> None:
    x = random_images(1, 3, 16).expand(16, -1, -1, -1).contiguous()
    for preset in ("simclr", "fixmatch"):
        v = Augmenter(preset_views(preset), **IDENTITY_NORM).view(x, 1, seeded())
        flat = v.flatten(1)
        distinct = {tuple(row.tolist()) for row in (flat * 255).round().int()}
        assert len(distinct) >= 14, preset  # 16 copies, (nearly) all augmented differently
    # Colour jitter alone: per-sample brightness factors differ.
    v = one_view([{"op": "color_jitter", "p": 1.0, "contrast": 0, "saturation": 0, "hue": 0}], x)
    assert v.mean((1, 2, 3)).unique().numel() == 16


def test_views_cycle_through_pipelines() -> None:
    aug = Augmenter(preset_views("fixmatch"), **IDENTITY_NORM)
    assert aug.num_views == 2
    x = random_images(4)
    assert torch.equal(aug.view(x, 2, seeded(3)), aug.view(x, 0, seeded(3)))


# ---- per-op semantics -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OPS))
def test_p_zero_is_identity(name: str) -> None:
    x = random_images(6, 3, 16)
    assert torch.equal(one_view([{"op": name, "p": 0.0}], x), x.float() / 255)


def test_flips_equal_torch_flip() -> None:
    x = random_images(4, 3, 9)
    torch.testing.assert_close(one_view([{"op": "horizontal_flip", "p": 1.0}], x), x.flip(3) / 255)
    torch.testing.assert_close(one_view([{"op": "vertical_flip", "p": 1.0}], x), x.flip(2) / 255)
    # Fused with another geometric op the flip goes through the warp: still exact.
    crop = {"op": "random_resized_crop", "scale": (1, 1), "ratio": (1, 1)}
    out = one_view([crop, {"op": "horizontal_flip", "p": 1.0}], x)
    torch.testing.assert_close(out, x.flip(3) / 255, atol=1e-5, rtol=0)


def test_flip_p_half_flips_some_samples_only() -> None:
    x = random_images(64, 3, 8)
    out = one_view([{"op": "horizontal_flip", "p": 0.5}], x)
    flipped = (out == x.flip(3) / 255).flatten(1).all(1)
    same = (out == x / 255).flatten(1).all(1)
    assert bool((flipped | same).all()) and 10 < int(flipped.sum()) < 54


def test_resized_crop_full_scale_is_identity() -> None:
    x = random_images(4, 3, 16)
    out = one_view([{"op": "random_resized_crop", "scale": (1.0, 1.0), "ratio": (1.0, 1.0)}], x)
    torch.testing.assert_close(out, x / 255, atol=1e-5, rtol=0)


def test_resized_crop_zooms_in() -> None:
    # A crop of a quarter of the area upsamples: neighbouring pixels become more alike.
    x = random_images(32, 1, 32)
    out = one_view([{"op": "random_resized_crop", "scale": (0.25, 0.25), "ratio": (1, 1)}], x)
    diff_in = (x.float() / 255).diff(dim=3).abs().mean()
    assert out.diff(dim=3).abs().mean() < 0.7 * diff_in


def test_rotation_matches_torchvision() -> None:
    x = random_images(4, 3, 16)
    out = one_view([{"op": "rotation", "p": 1.0, "degrees": (90, 90)}], x)
    torch.testing.assert_close(out, torch.rot90(x, 1, (2, 3)) / 255, atol=1e-5, rtol=0)
    out = one_view([{"op": "rotation", "p": 1.0, "degrees": (30, 30)}], x)
    ref = TF.rotate(x, 30, TF.InterpolationMode.BILINEAR).float() / 255
    assert (out - ref).abs().mean() < 2 / 255


def test_translate_is_a_whole_pixel_shift() -> None:
    x = random_images(8, 3, 16)
    out = (one_view([{"op": "random_translate", "fraction": 0.125}], x) * 255).round()
    m = 2  # shift <= 2 px at 16 px; compare the interior that stays inside the image
    for i in range(8):
        hits = [
            (dx, dy)
            for dx in range(-m, m + 1)
            for dy in range(-m, m + 1)
            if torch.equal(
                out[i, :, m:-m, m:-m], x[i].roll((dy, dx), (1, 2))[:, m:-m, m:-m].float()
            )
        ]
        assert hits, f"sample {i} is not a shift of its source"


def test_grayscale_channels_equal_and_luma() -> None:
    x = random_images(4, 3, 8)
    out = one_view([{"op": "grayscale", "p": 1.0}], x)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    ref = TF.rgb_to_grayscale(x.float() / 255, num_output_channels=3)
    torch.testing.assert_close(out, ref, atol=2e-4, rtol=0)  # torchvision's red is 0.2989


def test_solarize_threshold() -> None:
    ramp = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(2, 3, 16, 16)
    out = one_view([{"op": "solarize", "p": 1.0, "threshold": 0.5}], ramp.contiguous())
    v = ramp.float() / 255
    torch.testing.assert_close(out, torch.where(v >= 0.5, 1 - v, v))
    assert torch.equal(out[ramp < 128], v[ramp < 128])


def test_brightness_factor_applied_per_sample() -> None:
    x = (random_images(32, 3, 8) // 2).contiguous()  # <= 127: a factor up to 1.4 never clips
    ops = [
        {
            "op": "color_jitter",
            "p": 1.0,
            "brightness": 0.4,
            "contrast": 0,
            "saturation": 0,
            "hue": 0,
        }
    ]
    out = one_view(ops, x)
    ratio = out.sum((1, 2, 3)) / (x.float() / 255).sum((1, 2, 3))
    assert bool(((ratio >= 0.6 - 1e-5) & (ratio <= 1.4 + 1e-5)).all())
    torch.testing.assert_close(out, x.float() / 255 * ratio.view(-1, 1, 1, 1))
    factors = torch.tensor([0.5, 1.0, 1.3])
    xf = x[:3].float() / 255
    ref = torch.stack([TF.adjust_brightness(xf[i], float(f)) for i, f in enumerate(factors)])
    torch.testing.assert_close(colour.brightness(xf, factors), ref)


def test_contrast_and_saturation_match_torchvision() -> None:
    xf = random_images(3, 3, 8).float() / 255
    f = torch.tensor([0.3, 1.0, 1.7])
    for ours, ref in (
        (colour.contrast, TF.adjust_contrast),
        (colour.saturation, TF.adjust_saturation),
        (colour.sharpness, TF.adjust_sharpness),
    ):
        expected = torch.stack([ref(xf[i], float(v)) for i, v in enumerate(f)])
        torch.testing.assert_close(ours(xf, f), expected, atol=1e-4, rtol=0)


def test_hue_zero_is_identity_and_keeps_luma() -> None:
    xf = random_images(4, 3, 8).float() / 255 * 0.5 + 0.25
    torch.testing.assert_close(colour.hue(xf, torch.zeros(4)), xf, atol=1e-5, rtol=0)
    pale = xf * 0.4 + 0.3  # chroma small enough that the rotation never clips
    shifted = colour.hue(pale, torch.full((4,), 0.25))
    assert (shifted - pale).abs().mean() > 0.01
    torch.testing.assert_close(colour.luma(shifted), colour.luma(pale), atol=1e-4, rtol=0)
    grey = xf.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    torch.testing.assert_close(colour.hue(grey, torch.full((4,), 0.3)), grey, atol=1e-5, rtol=0)
    # The direction follows HSV: close to torchvision's adjust_hue for small shifts.
    ref = torch.stack([TF.adjust_hue(xf[i], 0.05) for i in range(4)])
    assert (colour.hue(xf, torch.full((4,), 0.05)) - ref).abs().mean() < 0.04


def test_colour_ops_on_grayscale_images() -> None:
    x = random_images(4, 1, 8)
    out = one_view([{"op": "color_jitter", "p": 1.0, "brightness": 0, "contrast": 0}], x)
    assert torch.equal(out, x.float() / 255)  # saturation and hue: nothing to do on grey
    assert torch.equal(one_view([{"op": "grayscale", "p": 1.0}], x), x.float() / 255)


def test_equalize_autocontrast_posterize_match_torchvision() -> None:
    x = random_images(4, 3, 16)
    xf = x.float() / 255
    assert torch.equal((colour.equalize(xf) * 255).round().to(torch.uint8), TF.equalize(x))
    eq = (colour.autocontrast(xf) * 255 - TF.autocontrast(x).float()).abs()
    assert eq.max() <= 1.0  # torchvision rounds down to uint8
    bits = torch.full((4,), 3.0)
    assert torch.equal((colour.posterize(xf, bits) * 255).round(), TF.posterize(x, 3).float())


def test_blur_smooths_keeps_constants_and_skips_masked() -> None:
    x = random_images(4, 3, 32)
    xf = x.float() / 255
    sigma = torch.full((4,), 1.0)
    mask = torch.tensor([True, True, False, True])
    out = colour.gaussian_blur(xf, sigma, mask, 0.1)
    assert torch.equal(out[2], xf[2])
    assert out[mask].diff(dim=3).abs().mean() < 0.8 * xf[mask].diff(dim=3).abs().mean()
    flat = torch.full((2, 3, 32, 32), 0.3)
    torch.testing.assert_close(colour.gaussian_blur(flat, sigma[:2], mask[:2], 0.25), flat)


def test_blur_kernel_grows_with_image_size() -> None:
    # sigma 2 at 96 px with a 10 % kernel (9 taps) blurs more than at 32 px (3 taps).
    def loss(size: int) -> float:
        xf = random_images(4, 1, size).float() / 255
        out = colour.gaussian_blur(xf, torch.full((4,), 2.0), torch.ones(4, dtype=torch.bool), 0.1)
        return float(out.diff(dim=3).abs().mean() / xf.diff(dim=3).abs().mean())

    assert loss(96) < loss(32) < 1.0


def test_random_erasing_area_within_range() -> None:
    x = torch.full((64, 3, 32, 32), 128, dtype=torch.uint8)
    ops = [
        {"op": "random_erasing", "p": 1.0, "scale": (0.05, 0.2), "ratio": (0.5, 2.0), "value": 0.0}
    ]
    out = one_view(ops, x)
    area = (out == 0).all(1).float().mean((1, 2))
    assert bool((area > 0).all())
    assert bool((area >= 0.05 - 0.02).all()) and bool((area <= 0.2 + 0.02).all())
    noisy = one_view([{**ops[0], "noise": True}], x)
    assert noisy.unique().numel() > 100


def test_cutout_square_is_filled() -> None:
    x = torch.zeros(32, 3, 32, 32, dtype=torch.uint8)
    out = one_view([{"op": "cutout", "size": (0.25, 0.5), "value": 1.0}], x)
    area = (out == 1.0).all(1).float().sum((1, 2))
    assert bool((area <= 16 * 16).all()) and int((area > 0).sum()) >= 28


def test_gaussian_noise_std_close_to_sigma() -> None:
    x = torch.full((16, 3, 32, 32), 128, dtype=torch.uint8)
    out = one_view([{"op": "gaussian_noise", "p": 1.0, "sigma": 0.05}], x)
    std = float((out - 128 / 255).std())
    assert abs(std - 0.05) < 0.003


def test_randaugment_runs_in_range_and_varies() -> None:
    x = random_images(1, 3, 32).expand(32, -1, -1, -1).contiguous()
    out = one_view([{"op": "randaugment", "n": 2, "magnitude": (0.3, 1.0)}], x)
    assert out.shape == x.shape and bool(((out >= 0) & (out <= 1)).all())
    assert len({tuple((r * 255).round().int().tolist()) for r in out.flatten(1)}) >= 28
    grey = one_view([{"op": "randaugment", "n": 3}], random_images(8, 1, 16))
    assert grey.shape == (8, 1, 16, 16)


# ---- fused and device-specific paths agree with the plain ones --------------------------------
def test_fused_colour_map_equals_sequential_ops_without_clipping() -> None:
    from engine.augment.colour_affine import ColourAffine

    xf = random_images(6, 3, 8).float() / 255 * 0.3 + 0.35  # pale: no intermediate value clips
    fb, fc, fs = (torch.tensor([0.9, 1.1, 1.0, 0.95, 1.05, 1.0]) for _ in range(3))
    fh = torch.tensor([0.0, 0.05, -0.05, 0.1, 0.02, 0.0])
    gray = torch.tensor([False, False, True, False, True, False])
    cmap = ColourAffine(xf)
    cmap.brightness(fb)
    cmap.contrast(fc)
    cmap.saturation(fs)
    cmap.hue(fh)
    cmap.grayscale(gray)
    ref = colour.hue(colour.saturation(colour.contrast(colour.brightness(xf, fb), fc), fs), fh)
    ref = colour.grayscale(ref, gray)
    torch.testing.assert_close(cmap.apply(xf), ref, atol=1e-5, rtol=0)


def test_blur_taps_equal_grouped_conv() -> None:
    import torch.nn.functional as F

    x = torch.rand(5, 3, 20, 20)
    k = colour.gaussian_kernels(torch.rand(5) * 2 + 0.1, 3)  # (5, 7)
    kk = k.repeat_interleave(3, 0)
    y = F.pad(x.reshape(1, 15, 20, 20), (3, 3, 0, 0), mode="reflect")
    y = F.conv2d(y, kk.view(15, 1, 1, 7), groups=15)
    y = F.conv2d(F.pad(y, (0, 0, 3, 3), mode="reflect"), kk.view(15, 1, 7, 1), groups=15)
    torch.testing.assert_close(colour._separable_taps(x, k, 3), y.view(5, 3, 20, 20))
