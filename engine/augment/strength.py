"""An op made weaker or stronger: one rule per op for how its strength scales.

The invariance profile (``engine.eval.invariance``) measures each op at the strength a run used
and at a weaker and a stronger setting. "Strength" is the distance of an op's parameters from
doing nothing: a rotation's angle range, colour jitter's four amounts, the part of the image a
crop throws away (``1 - scale``), how far below 1 a solarize threshold sits, bits removed by
posterize. :func:`scaled` multiplies that distance by a factor and clips to the declared bounds.

Ops without a strength (flips, grayscale, autocontrast, equalize) have one level only:
:func:`has_strength` says which.
"""

from __future__ import annotations

from typing import Any

from engine.augment.ops import OPS, validate_view

Op = dict[str, Any]

#: factors of the levels the profile measures, by name
LEVELS = {"weaker": 0.5, "run": 1.0, "stronger": 1.5}

# op -> (param, rule); rules: "scale" (multiply), "from_one" (distance below 1, ends of a
# range or a value), "around_one" (distance of a range's ends from 1), "bits" (bits removed)
_RULES: dict[str, list[tuple[str, str]]] = {
    "random_resized_crop": [("scale", "from_one")],
    "rotation": [("degrees", "scale")],
    "random_translate": [("fraction", "scale")],
    "color_jitter": [("brightness", "scale"), ("contrast", "scale"), ("saturation", "scale"),
                     ("hue", "scale")],
    "solarize": [("threshold", "from_one")],
    "posterize": [("bits", "bits")],
    "gaussian_blur": [("sigma", "scale")],
    "gaussian_noise": [("sigma", "scale")],
    "random_erasing": [("scale", "scale")],
    "cutout": [("size", "scale")],
    "randaugment": [("magnitude", "scale")],
    "shear": [("x", "scale"), ("y", "scale")],
    "perspective": [("distortion", "scale")],
    "sharpness": [("factor", "around_one")],
}


def has_strength(name: str) -> bool:
    """Whether ``name`` has parameters that make it weaker or stronger."""
    return name in _RULES


def _clip(value: float, name: str, param: str) -> float:
    spec = OPS[name].params[param]
    return min(max(value, float(spec.low)), float(spec.high))


def _apply(value: Any, rule: str, factor: float) -> Any:
    if isinstance(value, tuple):
        return tuple(_apply(v, rule, factor) for v in value)
    if rule == "scale":
        return round(value * factor, 6)
    if rule == "from_one":
        return round(1.0 - (1.0 - value) * factor, 6)
    if rule == "around_one":
        return round(1.0 + (value - 1.0) * factor, 6)
    if rule == "bits":
        return int(round(8 - (8 - value) * factor))
    raise ValueError(f"unknown strength rule {rule!r}")  # pragma: no cover


def scaled(op: Op, factor: float) -> Op:
    """A copy of ``op`` (validated, every default filled) with its strength times ``factor``
    (>= 0), clipped to the declared bounds; ``p`` is kept. Ops without a strength come back
    unchanged. Raises ValueError for a negative factor or an invalid op."""
    if factor < 0:
        raise ValueError(f"a strength factor must be >= 0, got {factor}")
    (out,) = validate_view([op])
    name = out["op"]
    if factor == 1.0:
        return out
    for param, rule in _RULES.get(name, []):
        new = _apply(out[param], rule, factor)
        if isinstance(new, tuple):
            new = tuple(_clip(v, name, param) for v in new)
        else:
            new = _clip(new, name, param)
            if OPS[name].params[param].kind == "int":
                new = int(new)
        out[param] = new
    (checked,) = validate_view([out])
    return checked
