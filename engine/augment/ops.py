"""The declaration of every augmentation op: names, parameters, ranges, help, probabilities.

This module is pure data plus validation. The UI builds its widgets from :data:`OPS`, the
pipeline executes what :func:`validate_view` returns, so the form and the training code cannot
disagree (the albumentations-demo idea).

A view is a list of op dicts, applied in order::

    [{"op": "random_resized_crop", "scale": (0.2, 1.0)},
     {"op": "horizontal_flip"},
     {"op": "color_jitter", "p": 0.8, "brightness": 0.4, "contrast": 0.4,
      "saturation": 0.4, "hue": 0.1}]

Every op has a probability ``p``, drawn per sample. Pixel values are on the ``[0, 1]`` scale
(``1`` = 255) wherever an op takes a value or a threshold; sizes are fractions of the image side
so that one preset serves 32 px and 96 px images alike.

What the papers' lists need, and where it is:

- SimCLR (https://arxiv.org/abs/2002.05709, appendix A): random_resized_crop, horizontal_flip,
  color_jitter, grayscale, gaussian_blur.
- BYOL (https://arxiv.org/abs/2006.07733, table 6): the same plus solarize; its asymmetric blur
  and solarize probabilities are per-view op lists (the ``byol`` preset).
- FixMatch's RandAugment (https://arxiv.org/abs/2001.07685, table 12): inside ``randaugment``,
  and each also alone: autocontrast, equalize, posterize, solarize, sharpness, rotation, shear,
  random_translate, cutout, and color_jitter for brightness, colour (saturation) and contrast.
- Beyond them: vertical_flip, perspective, gaussian_noise, random_erasing. Not here: elastic
  warps, and mixup/cutmix (they mix two images, so they are not views of one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PARAM_KINDS = ("float", "int", "range", "bool")


@dataclass(frozen=True)
class Param:
    """One parameter of an op.

    default: the value used when a view does not set it; a ``(lo, hi)`` tuple for ``range``.
    low, high: inclusive bounds for the value (for ``range``: for both ends).
    help: one sentence for the UI tooltip, with units.
    kind: ``'float'`` | ``'int'`` | ``'range'`` (a ``(lo, hi)`` pair, drawn from per sample) |
        ``'bool'``.
    """

    default: Any
    low: Any
    high: Any
    help: str
    kind: str = "float"

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"Param kind must be one of {PARAM_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class OpSpec:
    """The declaration of one op: name, help, parameters and default probability ``p``.

    group: where the UI files it (``geometry``, ``colour``, ``filter``, ``occlusion``,
    ``policy``); geometry ops of one view are fused into a single warp.
    """

    name: str
    help: str
    params: dict[str, Param] = field(default_factory=dict)
    p: float = 1.0
    group: str = "colour"


def _range(default: tuple[float, float], low: float, high: float, help: str) -> Param:
    return Param(default=default, low=low, high=high, help=help, kind="range")


_SPECS = [
    OpSpec(
        "random_resized_crop",
        "Crop a random area and aspect ratio, resized back to the input size "
        "(Szegedy et al. 2015; the core SimCLR augmentation, https://arxiv.org/abs/2002.05709).",
        {
            "scale": _range((0.08, 1.0), 0.01, 1.0, "fraction of the image area kept"),
            "ratio": _range((3 / 4, 4 / 3), 0.1, 10.0, "aspect ratio (width / height) of the crop"),
        },
        p=1.0,
        group="geometry",
    ),
    OpSpec("horizontal_flip", "Mirror left-right.", {}, p=0.5, group="geometry"),
    OpSpec(
        "vertical_flip",
        "Mirror top-bottom (aerial or microscopy images).",
        {},
        p=0.5,
        group="geometry",
    ),
    OpSpec(
        "rotation",
        "Rotate by a random angle about the centre; corners are filled black (or reflected).",
        {
            "degrees": _range((-30.0, 30.0), -180.0, 180.0, "angle in degrees, counter-clockwise"),
            "reflect": Param(
                False, False, True, "fill corners by reflection instead of black", "bool"
            ),
        },
        p=0.5,
        group="geometry",
    ),
    OpSpec(
        "random_translate",
        "Pad-and-crop: shift by a whole number of pixels, reflecting at the border "
        "(the weak augmentation of FixMatch, https://arxiv.org/abs/2001.07685).",
        {
            "fraction": Param(
                0.125, 0.0, 0.5, "largest shift as a fraction of the side (0.125 = 4 px at 32 px)"
            ),
        },
        p=1.0,
        group="geometry",
    ),
    OpSpec(
        "color_jitter",
        "Random brightness, contrast, saturation and hue, one factor each per sample, applied "
        "in that fixed order (torchvision shuffles it) and composed into one colour map, "
        "clipped once at the end. Hue is a rotation of the chroma plane in YIQ space.",
        {
            "brightness": Param(0.4, 0.0, 1.0, "factor drawn from [1 - b, 1 + b]"),
            "contrast": Param(0.4, 0.0, 1.0, "factor drawn from [1 - c, 1 + c]"),
            "saturation": Param(0.4, 0.0, 1.0, "factor drawn from [1 - s, 1 + s]"),
            "hue": Param(0.1, 0.0, 0.5, "shift drawn from [-h, h], in turns of the colour wheel"),
        },
        p=0.8,
    ),
    OpSpec("grayscale", "Replace colour by luma (ITU-R 601), kept as 3 channels.", {}, p=0.2),
    OpSpec(
        "solarize",
        "Invert pixels at or above a threshold (BYOL, https://arxiv.org/abs/2006.07733).",
        {"threshold": Param(0.5, 0.0, 1.0, "pixel value (1 = 255) from which pixels invert")},
        p=0.2,
    ),
    OpSpec(
        "posterize",
        "Keep only the top bits of each pixel.",
        {"bits": Param(4, 1, 8, "bits kept per channel", "int")},
        p=0.5,
    ),
    OpSpec(
        "gaussian_blur",
        "Gaussian blur with a random sigma per sample; the kernel spans a fraction of the image "
        "side (10 % in SimCLR), so blur is weak on small images by construction.",
        {
            "sigma": _range((0.1, 2.0), 0.01, 10.0, "standard deviation in pixels"),
            "kernel_frac": Param(0.1, 0.02, 0.5, "kernel size as a fraction of the image side"),
        },
        p=0.5,
        group="filter",
    ),
    OpSpec(
        "gaussian_noise",
        "Add Gaussian pixel noise.",
        {"sigma": Param(0.05, 0.0, 1.0, "noise standard deviation (1 = 255)")},
        p=0.5,
        group="filter",
    ),
    OpSpec(
        "random_erasing",
        "Erase a random rectangle (Zhong et al. 2017, https://arxiv.org/abs/1708.04896).",
        {
            "scale": _range((0.02, 0.33), 0.001, 1.0, "fraction of the image area erased"),
            "ratio": _range((0.3, 3.3), 0.05, 20.0, "aspect ratio (width / height)"),
            "value": Param(0.0, 0.0, 1.0, "fill value (1 = 255)"),
            "noise": Param(False, False, True, "fill with uniform noise instead of value", "bool"),
        },
        p=0.5,
        group="occlusion",
    ),
    OpSpec(
        "cutout",
        "Fill a square at a random centre, clipped at the border (DeVries & Taylor 2017, "
        "https://arxiv.org/abs/1708.04552; part of FixMatch's strong view).",
        {
            "size": _range((0.0, 0.5), 0.0, 1.0, "side of the square as a fraction of the image"),
            "value": Param(0.5, 0.0, 1.0, "fill value (1 = 255)"),
        },
        p=1.0,
        group="occlusion",
    ),
    OpSpec(
        "shear",
        "Shear by a random angle per sample along x (and y), about the centre; corners are "
        "filled black (torchvision's RandomAffine shear; ShearX/Y of RandAugment, "
        "https://arxiv.org/abs/1909.13719).",
        {
            "x": _range((-15.0, 15.0), -60.0, 60.0, "x shear angle in degrees"),
            "y": _range((0.0, 0.0), -60.0, 60.0, "y shear angle in degrees"),
        },
        p=0.5,
        group="geometry",
    ),
    OpSpec(
        "perspective",
        "Perspective warp: each corner moves inwards by a random amount, up to `distortion` of "
        "half the side in x and in y, as torchvision's RandomPerspective; corners filled black.",
        {"distortion": Param(0.3, 0.0, 0.9, "largest corner shift, a fraction of half the side")},
        p=0.5,
        group="geometry",
    ),
    OpSpec(
        "autocontrast",
        "Stretch each channel to the full range (PIL's autocontrast; a RandAugment op).",
        {},
        p=0.5,
    ),
    OpSpec(
        "equalize",
        "Histogram equalisation of each channel (PIL's equalize; a RandAugment op).",
        {},
        p=0.5,
    ),
    OpSpec(
        "sharpness",
        "Blend with a 3x3 smoothed copy by a random factor per sample: 0 = smoothed, 1 = "
        "unchanged, 2 = sharpened (PIL's ImageEnhance.Sharpness; a RandAugment op).",
        {"factor": _range((0.1, 1.9), 0.0, 4.0, "blend factor drawn from [low, high]")},
        p=0.5,
        group="filter",
    ),
    OpSpec(
        "randaugment",
        "RandAugment (Cubuk et al. 2019, https://arxiv.org/abs/1909.13719): n ops per sample "
        "drawn from a pool of 14 (identity, autocontrast, equalize, brightness, colour, "
        "contrast, sharpness, posterize, solarize, rotate, shear x/y, translate x/y) with a "
        "magnitude drawn per sample, as in FixMatch's RA variant.",
        {
            "n": Param(2, 1, 14, "ops applied to each sample", "int"),
            "magnitude": _range(
                (0.0, 1.0),
                0.0,
                1.0,
                "strength, a fraction of each op's "
                "maximum; (m, m) gives the fixed magnitude of Cubuk et al.",
            ),
            "fill": Param(0.5, 0.0, 1.0, "value for pixels moved in from outside (1 = 255)"),
        },
        p=1.0,
        group="policy",
    ),
]

OPS: dict[str, OpSpec] = {spec.name: spec for spec in _SPECS}


def _check(value: Any, param: Param, where: str) -> Any:
    """Coerce ``value`` to the param's kind and check its bounds; ValueError with ``where``."""
    bounds = f"[{param.low}, {param.high}]"
    if param.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if param.kind == "range":
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
            raise ValueError(f"{where} must be a (low, high) pair, got {value!r}")
        try:
            lo, hi = float(value[0]), float(value[1])
        except (TypeError, ValueError):
            raise ValueError(f"{where} must hold two numbers, got {value!r}") from None
        if lo > hi:
            raise ValueError(f"{where}: low end {lo} is above high end {hi}")
        if lo < param.low or hi > param.high:
            raise ValueError(
                f"{where} = ({lo}, {hi}) is out of range; both ends must be in {bounds}"
            )
        return (lo, hi)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if param.kind == "int":
        if float(value) != int(value):
            raise ValueError(f"{where} must be a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if not param.low <= value <= param.high:
        raise ValueError(f"{where} = {value} is out of range {bounds}")
    return value


_P = Param(1.0, 0.0, 1.0, "probability of applying the op to each sample")


def validate_view(ops: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Check one view's op list and fill every default.

    ops: a list of dicts ``{"op": name, "p": prob, **params}``; missing params take their
        defaults, ``p`` the op's default probability.
    Returns new dicts with every parameter present (ranges as tuples).
    Raises ValueError naming the op and the parameter on an unknown op or parameter, a wrong
    type or a value out of range.
    """
    if isinstance(ops, Mapping) or isinstance(ops, str) or not isinstance(ops, Sequence):
        raise ValueError(
            f"a view must be a list of ops like [{{'op': 'horizontal_flip'}}], got {ops!r}"
        )
    out: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        if not isinstance(op, Mapping):
            raise ValueError(
                f"op #{i} must be a mapping like {{'op': 'horizontal_flip'}}, got {op!r}"
            )
        name = op.get("op")
        if name not in OPS:
            known = ", ".join(sorted(OPS))
            raise ValueError(f"unknown augmentation op {name!r} (op #{i}); known: {known}")
        spec = OPS[name]
        unknown = sorted(set(op) - {"op", "p"} - set(spec.params))
        if unknown:
            known = ", ".join(["p", *spec.params])
            raise ValueError(f"{name}: unknown parameter(s) {', '.join(unknown)}; known: {known}")
        checked: dict[str, Any] = {"op": name, "p": _check(op.get("p", spec.p), _P, f"{name}.p")}
        for key, param in spec.params.items():
            checked[key] = _check(op.get(key, param.default), param, f"{name}.{key}")
        out.append(checked)
    return out
