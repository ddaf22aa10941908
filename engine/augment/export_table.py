"""The per-op mapping from this engine's ops to torchvision.transforms.v2 and kornia.augmentation.

One row per op (:data:`TABLE`): the call that stands for it in each library, written as a
template over the op's own parameters (and a few values derived from them and the image size,
:func:`template_values`), and, where the library has no exact equivalent, a note saying what
differs. :mod:`engine.augment.export` writes pipelines from it; the tests build every row in
both libraries and check that the parameters they draw lie in the op's own ranges.

"Exact" means the same op with the same parameter ranges and probability. Pixels still differ
slightly everywhere: this engine fuses a view's geometric ops into one resampling and its
colour ops into one affine colour map clipped once (``engine.augment.colour_affine``).

torchvision's probability: an op whose class takes ``p`` gets it; others are wrapped in
``v2.RandomApply([...], p=p)`` when ``p < 1`` (``tv_p = "apply"``). kornia's ops all take ``p``.

| op | torchvision.transforms.v2 | kornia.augmentation |
|---|---|---|
| random_resized_crop | RandomResizedCrop(scale, ratio) | RandomResizedCrop(scale, ratio) |
| horizontal_flip / vertical_flip | RandomHorizontalFlip / RandomVerticalFlip | the same names |
| rotation | RandomRotation(degrees); reflect: not exact | RandomAffine(degrees, padding_mode) |
| random_translate | Pad(reflect) + RandomCrop | RandomCrop(padding, padding_mode=reflect) |
| color_jitter | ColorJitter (random order, HSV hue): not exact | ColorJitter (HSV hue): not exact |
| grayscale | RandomGrayscale | RandomGrayscale |
| solarize | RandomSolarize(threshold) | RandomSolarize(thresholds=(t, t), additions=0) |
| posterize | RandomPosterize(bits) | RandomPosterize(bits=(b, b)) |
| gaussian_blur | GaussianBlur(kernel from the image size, sigma) | RandomGaussianBlur(same) |
| gaussian_noise | GaussianNoise(sigma, clip) | RandomGaussianNoise(std) (clipped at the end) |
| random_erasing | RandomErasing(scale, ratio, value or noise) | RandomErasing; noise: not exact |
| cutout | RandomErasing(square): not exact | RandomErasing(square): not exact |
| randaugment | RandAugment(fixed magnitude): not exact | auto.RandAugment(n, m): not exact (and
  3 channels only) |
| shear | RandomAffine(degrees=0, shear) | RandomShear(shear) |
| perspective | RandomPerspective(distortion_scale) | RandomPerspective(distortion_scale) |
| autocontrast, equalize | RandomAutocontrast, RandomEqualize | RandomAutoContrast, RandomEqualize |
| sharpness | RandomAdjustSharpness(one factor): not exact | RandomSharpness(factor range) |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Op = dict[str, Any]


@dataclass(frozen=True)
class Row:
    """How one op is written in torchvision.transforms.v2 (``tv``) and kornia (``kornia``).

    tv, kornia: a call, formatted with the op's parameters and :func:`template_values`.
    tv_p: ``"kwarg"`` when the template passes ``p`` itself, ``"apply"`` to wrap it in
        ``v2.RandomApply`` when ``p < 1``.
    tv_note, kornia_note: ``f(op) -> str``, what differs ("" = an exact equivalent).
    """

    tv: str
    kornia: str
    tv_p: str = "kwarg"
    tv_note: Callable[[Op], str] = lambda op: ""
    kornia_note: Callable[[Op], str] = lambda op: ""


_JITTER = ("hue is an HSV shift (here a YIQ chroma rotation); each op clips on its own (here "
           "one colour map clipped once)")


def _blur_kernel(op: Op, size: int) -> int:
    """The odd kernel size :func:`engine.augment.colour.gaussian_blur` uses at ``size`` px."""
    radius = min(max(1, int(op["kernel_frac"] * size) // 2), size - 1)
    return 2 * radius + 1


def template_values(op: Op, size: int) -> dict[str, Any]:
    """The op's parameters plus the values the templates derive from them for ``size`` px
    images (square): ``size``, ``pad``, ``kernel``, ``mid``, ``cut_scale``, ``shear4``,
    ``tv_m``, ``k_m``, ``padding_mode``, ``tv_erase_value``."""
    v: dict[str, Any] = {k: (tuple(x) if isinstance(x, list) else x) for k, x in op.items()}
    v["size"] = size
    name = op["op"]
    if name == "random_translate":
        v["pad"] = round(op["fraction"] * size)
    elif name == "gaussian_blur":
        v["kernel"] = _blur_kernel(op, size)
    elif name == "sharpness":
        v["mid"] = round(sum(op["factor"]) / 2, 4)
    elif name == "cutout":
        lo, hi = op["size"]
        v["cut_scale"] = (max(round(lo * lo, 4), 0.0001), max(round(hi * hi, 4), 0.0001))
    elif name == "shear":
        v["shear4"] = (*op["x"], *op["y"])
    elif name == "randaugment":
        mid = sum(op["magnitude"]) / 2
        v["tv_m"] = round(mid * 30)  # torchvision: bins 0..30 of 31
        v["k_m"] = min(29, max(1, round(mid * 30)))  # kornia: m in (0, 30)
    elif name == "rotation":
        v["padding_mode"] = "reflection" if op["reflect"] else "zeros"
    elif name == "random_erasing":
        v["tv_erase_value"] = "'random'" if op["noise"] else op["value"]
    return v


def _when(cond: Callable[[Op], bool], note: str) -> Callable[[Op], str]:
    return lambda op: note if cond(op) else ""


TABLE: dict[str, Row] = {
    "random_resized_crop": Row(
        "v2.RandomResizedCrop({size}, scale={scale}, ratio={ratio}, antialias=True)",
        "K.RandomResizedCrop(({size}, {size}), scale={scale}, ratio={ratio}, p={p})",
        tv_p="apply",
    ),
    "horizontal_flip": Row("v2.RandomHorizontalFlip(p={p})", "K.RandomHorizontalFlip(p={p})"),
    "vertical_flip": Row("v2.RandomVerticalFlip(p={p})", "K.RandomVerticalFlip(p={p})"),
    "rotation": Row(
        "v2.RandomRotation(degrees={degrees})",
        "K.RandomAffine(degrees={degrees}, padding_mode='{padding_mode}', p={p})",
        tv_p="apply",
        tv_note=_when(lambda op: op["reflect"],
                      "corners are filled black: torchvision's rotation cannot reflect"),
    ),
    "random_translate": Row(
        "v2.Compose([v2.Pad({pad}, padding_mode='reflect'), v2.RandomCrop({size})])",
        "K.RandomCrop(({size}, {size}), padding={pad}, padding_mode='reflect', p={p})",
        tv_p="apply",
    ),
    "color_jitter": Row(
        "v2.ColorJitter(brightness={brightness}, contrast={contrast}, "
        "saturation={saturation}, hue={hue})",
        "K.ColorJitter(brightness={brightness}, contrast={contrast}, "
        "saturation={saturation}, hue={hue}, p={p})",
        tv_p="apply",
        tv_note=lambda op: "the four ops in a random order; " + _JITTER,
        kornia_note=lambda op: _JITTER,
    ),
    "grayscale": Row("v2.RandomGrayscale(p={p})", "K.RandomGrayscale(p={p})"),
    "solarize": Row(
        "v2.RandomSolarize(threshold={threshold}, p={p})",
        "K.RandomSolarize(thresholds=({threshold}, {threshold}), additions=(0.0, 0.0), p={p})",
    ),
    "posterize": Row(
        "v2.RandomPosterize(bits={bits}, p={p})",
        "K.RandomPosterize(bits=({bits}, {bits}), p={p})",
    ),
    "gaussian_blur": Row(
        "v2.GaussianBlur(kernel_size={kernel}, sigma={sigma})",
        "K.RandomGaussianBlur(kernel_size={kernel}, sigma={sigma}, border_type='reflect', "
        "p={p})",
        tv_p="apply",
    ),
    "gaussian_noise": Row(
        "v2.GaussianNoise(mean=0.0, sigma={sigma}, clip=True)",
        "K.RandomGaussianNoise(mean=0.0, std={sigma}, p={p})",
        tv_p="apply",
        kornia_note=lambda op: "kornia does not clip the noisy image: the view is clipped at "
        "the end",
    ),
    "random_erasing": Row(
        "v2.RandomErasing(p={p}, scale={scale}, ratio={ratio}, value={tv_erase_value})",
        "K.RandomErasing(scale={scale}, ratio={ratio}, value={value}, p={p})",
        kornia_note=_when(lambda op: op["noise"],
                          "kornia erases with a constant value, not noise"),
    ),
    "cutout": Row(
        "v2.RandomErasing(p={p}, scale={cut_scale}, ratio=(1.0, 1.0), value={value})",
        "K.RandomErasing(scale={cut_scale}, ratio=(1.0, 1.0), value={value}, p={p})",
        tv_note=lambda op: "cutout's square may overhang the border (clipped); RandomErasing's "
        "square of the same side range stays inside",
        kornia_note=lambda op: "cutout's square may overhang the border (clipped); "
        "RandomErasing's square of the same side range stays inside",
    ),
    "randaugment": Row(
        "v2.RandAugment(num_ops={n}, magnitude={tv_m}, num_magnitude_bins=31, fill={fill})",
        "KA.RandAugment(n={n}, m={k_m})",
        tv_p="apply",
        tv_note=lambda op: "one fixed magnitude (the middle of the range) instead of one drawn "
        "per sample; torchvision's pool and strengths differ slightly (translate up to 45 %)",
        kornia_note=lambda op: "one fixed magnitude (the middle of the range); kornia's own "
        "pool and strengths; no probability and no fill",
    ),
    "shear": Row(
        "v2.RandomAffine(degrees=0, shear={shear4})",
        "K.RandomShear(shear={shear4}, p={p})",
        tv_p="apply",
    ),
    "perspective": Row(
        "v2.RandomPerspective(distortion_scale={distortion}, p={p})",
        "K.RandomPerspective(distortion_scale={distortion}, p={p})",
    ),
    "autocontrast": Row("v2.RandomAutocontrast(p={p})", "K.RandomAutoContrast(p={p})"),
    "equalize": Row("v2.RandomEqualize(p={p})", "K.RandomEqualize(p={p})"),
    "sharpness": Row(
        "v2.RandomAdjustSharpness(sharpness_factor={mid}, p={p})",
        "K.RandomSharpness(sharpness={factor}, p={p})",
        tv_note=_when(lambda op: op["factor"][0] != op["factor"][1],
                      "torchvision takes one fixed factor (the middle of the range) instead of "
                      "one drawn per sample"),
    ),
}
