"""The :class:`Augmenter`: per-view op lists executed batched on the images' device.

Each sample of a batch gets its own random parameters, drawn from the caller's generator
(the airbench idea, https://github.com/KellerJordan/cifar10-airbench): images stay on the
training device as ``uint8``, views are made there in float32 and normalised, with no python
loop over samples. Consecutive geometric ops of a view are fused into one warp.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from engine.augment import colour, geometry
from engine.augment.colour_affine import ColourAffine
from engine.augment.ops import OPS, validate_view
from engine.augment.presets import preset_views
from engine.augment.randaugment import randaugment
from engine.augment.sampling import check_generator, coin, uniform
from engine.config import AugmentConfig

Op = dict[str, Any]
Stage = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


def resolve_views(cfg: AugmentConfig) -> list[list[Op]]:
    """The validated per-view op lists of an ``AugmentConfig``.

    ``cfg.views`` when given, else the views of ``cfg.preset``; every op named in
    ``cfg.disable`` is removed from every view. Raises ValueError on an unknown op name in
    ``disable`` (a typo would otherwise silently switch nothing off).
    """
    unknown = sorted(set(cfg.disable) - set(OPS))
    if unknown:
        raise ValueError(
            f"augment.disable names unknown op(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(OPS))}"
        )
    views = [list(v) for v in cfg.views] if cfg.views else preset_views(cfg.preset)
    off = set(cfg.disable)
    return [validate_view([op for op in view if op.get("op") not in off]) for view in views]


# ---- geometry: one matrix per op and sample, one warp per run of geometric ops --------------
def _matrix(
    op: Op, g: torch.Generator | None, b: int, h: int, w: int, dev: torch.device
) -> torch.Tensor:
    """The op's per-sample matrices ``(b, 3, 3)``, identity for samples it skips."""
    name = op["op"]
    apply = coin(g, b, op["p"], dev)
    if name == "horizontal_flip":
        return geometry.flip(apply, 0)
    if name == "vertical_flip":
        return geometry.flip(apply, 1)
    if name == "random_resized_crop":
        m = geometry.resized_crop(g, b, h, w, op["scale"], op["ratio"], dev)
    elif name == "rotation":
        m = geometry.rotation(uniform(g, (b,), *op["degrees"], dev), h, w)
    elif name == "random_translate":
        m = geometry.random_translation(g, b, h, w, op["fraction"], dev)
    elif name == "shear":
        sx, sy = uniform(g, (b,), *op["x"], dev), uniform(g, (b,), *op["y"], dev)
        m = geometry.shear_degrees(sx, sy, h, w)
    elif name == "perspective":
        m = geometry.perspective(g, b, op["distortion"], dev)
    else:  # pragma: no cover - guarded by GEOMETRY
        raise ValueError(f"{name} is not a geometric op")
    return geometry.select(apply, m)


def _warp_stage(ops: list[Op]) -> Stage:
    """One stage for consecutive geometric ops: a product of matrices, one ``grid_sample``.

    Flips alone take a cheaper exact path. The warp reflects at the border when any of its
    ops asks for it (random_translate, rotation with ``reflect``), else fills black.
    """
    reflect = any(op["op"] == "random_translate" or op.get("reflect") for op in ops)
    flips_only = all(op["op"].endswith("_flip") for op in ops)
    projective = any(op["op"] == "perspective" for op in ops)

    def run(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        b, _, h, w = x.shape
        if flips_only:
            for op in ops:
                apply = coin(g, b, op["p"], x.device).view(-1, 1, 1, 1)
                dim = 3 if op["op"] == "horizontal_flip" else 2
                x = torch.where(apply, x.flip(dim), x)
            return x
        theta = _matrix(ops[0], g, b, h, w, x.device)
        for op in ops[1:]:
            theta = theta @ _matrix(op, g, b, h, w, x.device)
        return geometry.warp(x, theta, reflect=reflect, projective=projective)

    return run


# ---- everything else: one function per op ----------------------------------------------------
def _factor(g: torch.Generator | None, apply: torch.Tensor, strength: float) -> torch.Tensor:
    """Factors in ``[max(0, 1 - s), 1 + s]`` where ``apply``, 1 elsewhere."""
    f = uniform(g, (apply.shape[0],), max(0.0, 1.0 - strength), 1.0 + strength, apply.device)
    return torch.where(apply, f, torch.ones_like(f))


def _colour_stage(ops: list[Op]) -> Stage:
    """One stage for consecutive colour_jitter / grayscale ops: one affine colour map per sample.

    Factors are composed into a per-sample matrix (see ``colour_affine``) and applied in one
    pass, clipping once at the end.
    """

    def run(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        cmap = ColourAffine(x)
        b, dev = x.shape[0], x.device
        for op in ops:
            apply = coin(g, b, op["p"], dev)
            if op["op"] == "grayscale":
                cmap.grayscale(apply)
                continue
            fb = _factor(g, apply, op["brightness"])
            fc = _factor(g, apply, op["contrast"])
            fs = _factor(g, apply, op["saturation"])
            fh = torch.where(apply, uniform(g, (b,), -op["hue"], op["hue"], dev), 0.0)
            if op["brightness"] > 0:
                cmap.brightness(fb)
            if op["contrast"] > 0:
                cmap.contrast(fc)
            if op["saturation"] > 0:
                cmap.saturation(fs)
            if op["hue"] > 0:
                cmap.hue(fh)
        return cmap.apply(x)

    return run


def _blur(x: torch.Tensor, op: Op, apply: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    sigma = uniform(g, (x.shape[0],), *op["sigma"], x.device)
    return colour.gaussian_blur(x, sigma, apply, op["kernel_frac"])


def _noise(x: torch.Tensor, op: Op, apply: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    sigma = torch.where(apply, op["sigma"], 0.0).view(-1, 1, 1, 1)
    noise = torch.randn(x.shape, generator=g, device=x.device)
    return (x + sigma * noise).clamp_(0.0, 1.0)


def _erasing(
    x: torch.Tensor, op: Op, apply: torch.Tensor, g: torch.Generator | None
) -> torch.Tensor:
    b, c, h, w = x.shape
    mask, ok = geometry.erasing_rect(g, b, h, w, op["scale"], op["ratio"], x.device)
    mask &= (apply & ok).view(-1, 1, 1, 1)
    fill: torch.Tensor | float = op["value"]
    if op["noise"]:
        fill = torch.rand(x.shape, generator=g, device=x.device)
    return torch.where(mask, fill, x)


def _cutout(
    x: torch.Tensor, op: Op, apply: torch.Tensor, g: torch.Generator | None
) -> torch.Tensor:
    b, _, h, w = x.shape
    mask = geometry.cutout_rect(g, b, h, w, op["size"], x.device) & apply.view(-1, 1, 1, 1)
    return torch.where(mask, op["value"], x)


def _threshold(x: torch.Tensor, op: Op, apply: torch.Tensor, _g: Any) -> torch.Tensor:
    # Threshold 2 inverts nothing: the skipped samples stay exact.
    t = torch.where(apply, op["threshold"], 2.0)
    return colour.solarize(x, t)


def _posterize(x: torch.Tensor, op: Op, apply: torch.Tensor, _g: Any) -> torch.Tensor:
    bits = torch.full((x.shape[0],), float(op["bits"]), device=x.device)
    return torch.where(apply.view(-1, 1, 1, 1), colour.posterize(x, bits), x)


def _where(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A parameterless op applied to the samples ``apply`` selects."""

    def run(x: torch.Tensor, op: Op, apply: torch.Tensor, _g: Any) -> torch.Tensor:
        return torch.where(apply.view(-1, 1, 1, 1), fn(x), x)

    return run


def _sharpness(
    x: torch.Tensor, op: Op, apply: torch.Tensor, g: torch.Generator | None
) -> torch.Tensor:
    factor = uniform(g, (x.shape[0],), *op["factor"], x.device)
    return torch.where(apply.view(-1, 1, 1, 1), colour.sharpness(x, factor), x)


_POINT_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "autocontrast": _where(colour.autocontrast),
    "equalize": _where(colour.equalize),
    "sharpness": _sharpness,
    "solarize": _threshold,
    "posterize": _posterize,
    "gaussian_blur": _blur,
    "gaussian_noise": _noise,
    "random_erasing": _erasing,
    "cutout": _cutout,
    "randaugment": lambda x, op, apply, g: randaugment(
        x, apply, op["n"], op["magnitude"], op["fill"], g
    ),
}
GEOMETRY = {name for name, spec in OPS.items() if spec.group == "geometry"}
COLOUR_MAPS = {"color_jitter", "grayscale"}  # affine in colour: fused into one map per sample
assert set(_POINT_OPS) | GEOMETRY | COLOUR_MAPS == set(OPS), "every op needs an implementation"


def _point_stage(op: Op) -> Stage:
    fn = _POINT_OPS[op["op"]]

    def run(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        return fn(x, op, coin(g, x.shape[0], op["p"], x.device), g)

    return run


def compile_view(ops: list[Op]) -> list[Stage]:
    """Stages for one validated view; ops with ``p = 0`` are dropped (exact identity)."""
    stages: list[Stage] = []
    run: list[Op] = []  # consecutive ops of one fusable family
    family = ""

    def close() -> None:
        if run:
            stages.append(_warp_stage(run) if family == "geometry" else _colour_stage(run))

    for op in ops:
        if op["p"] <= 0.0:
            continue
        kind = "geometry" if op["op"] in GEOMETRY else "colour" if op["op"] in COLOUR_MAPS else ""
        if kind != family:
            close()
            run, family = [], kind
        if kind:
            run.append(op)
        else:
            stages.append(_point_stage(op))
    close()
    return stages


class Augmenter:
    """Makes normalised views of ``uint8`` batches on their own device.

    views: per-view op lists (validated here); view ``i`` uses ``views[i % len(views)]``, so
        one list serves SimCLR's two identical pipelines and two lists BYOL's asymmetric ones.
    mean, std: per-channel normalisation on the ``[0, 1]`` scale (one value serves any C).
    """

    def __init__(
        self, views: Sequence[Sequence[Op]], mean: Sequence[float], std: Sequence[float]
    ) -> None:
        if len(views) == 0:
            views = [[]]
        self.pipelines: list[list[Op]] = [validate_view(list(v)) for v in views]
        self._stages = [compile_view(v) for v in self.pipelines]
        self.mean = torch.tensor([float(m) for m in mean], dtype=torch.float32)
        self.std = torch.tensor([float(s) for s in std], dtype=torch.float32)
        if self.mean.numel() == 0 or self.mean.shape != self.std.shape:
            raise ValueError("mean and std need one value per channel (or one for all)")
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        if bool((self.std <= 0).any()):
            raise ValueError(f"std must be positive, got {list(std)}")

    @property
    def num_views(self) -> int:
        return len(self.pipelines)

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = x.shape[1]
        if self.mean.numel() not in (1, c):
            raise ValueError(
                f"images have {c} channel(s) but mean/std have {self.mean.numel()} values"
            )
        if x.device not in self._on_device:  # once per device: no host-to-device copy per call
            shape = (1, -1, 1, 1)
            self._on_device[x.device] = (
                self.mean.to(x.device).view(shape),
                self.std.to(x.device).view(shape),
            )
        return self._on_device[x.device]

    @staticmethod
    def _check(x: torch.Tensor) -> None:
        if x.dtype != torch.uint8 or x.ndim != 4:
            raise ValueError(f"expected uint8 images (B, C, H, W), got {x.dtype} {tuple(x.shape)}")

    def view(self, x: torch.Tensor, i: int, generator: torch.Generator | None) -> torch.Tensor:
        """One augmented view of every image.

        x: uint8 ``(B, C, H, W)``; i: the view pipeline (``i % num_views``); generator: a
        ``torch.Generator`` on x's device, drawn from for every sample's parameters.
        Returns float32 ``(B, C, H, W)`` normalised with mean/std, on x's device.
        """
        self._check(x)
        check_generator(generator, x.device)
        mean, std = self._stats(x)
        with torch.no_grad():
            y = x.to(torch.float32).div_(255.0)
            for stage in self._stages[i % self.num_views]:
                y = stage(y, generator)
            return y.sub_(mean).div_(std)

    def views(
        self, x: torch.Tensor, n: int, generator: torch.Generator | None
    ) -> list[torch.Tensor]:
        """``[view(x, 0), ..., view(x, n - 1)]``."""
        return [self.view(x, i, generator) for i in range(n)]

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` to normalised float32, no augmentation (evaluation)."""
        self._check(x)
        mean, std = self._stats(x)
        return x.to(torch.float32).div_(255.0).sub_(mean).div_(std)

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float ``(B, C, H, W)`` back to uint8 for display."""
        mean, std = self._stats(x)
        return (x * std + mean).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
