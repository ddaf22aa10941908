"""RandAugment, batched: every sample draws its own ``n`` ops and magnitudes.

Cubuk et al. 2019, https://arxiv.org/abs/1909.13719; with FixMatch's variant of a magnitude
drawn per sample (Sohn et al. 2020, https://arxiv.org/abs/2001.07685). Strengths at magnitude 1
follow torchvision's RandAugment (factors ``1 +- 0.9``, 30 degrees, shear 0.3) and FixMatch's
translation (30 % of the side).

Batching: each sample picks ``n`` distinct ops of the pool. The geometric ones it picked
(rotate, shear, translate) are multiplied into one matrix per sample and applied in a single
warp; the photometric ones then run over the whole batch in a fixed order, each kept only for
the samples that picked it (``torch.where``). The per-sample order of the paper becomes that
fixed order, a small difference that keeps the op one pass over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.augment import colour, geometry
from engine.augment.sampling import uniform

# Geometric ops last: randaugment() selects them as POOL[_INDEX["rotate"]:].
POOL = (
    "identity",
    "autocontrast",
    "equalize",
    "brightness",
    "color",
    "contrast",
    "sharpness",
    "posterize",
    "solarize",
    "rotate",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)
_INDEX = {name: i for i, name in enumerate(POOL)}
Index = torch.Tensor | slice
_FACTOR_OPS = {
    "brightness": colour.brightness,
    "color": colour.saturation,
    "contrast": colour.contrast,
    "sharpness": colour.sharpness,
}


def randaugment(
    x: torch.Tensor,
    apply: torch.Tensor,
    n: int,
    magnitude: tuple[float, float],
    fill: float,
    g: torch.Generator | None,
) -> torch.Tensor:
    """Apply RandAugment to ``x`` (float ``(B, C, H, W)`` in ``[0, 1]``).

    apply: bool ``(B,)``, the samples the op applies to (its probability ``p``).
    n: ops per sample, distinct, out of the 14 of :data:`POOL`.
    magnitude: ``(lo, hi)`` in ``[0, 1]``; drawn per sample and op.
    fill: value of pixels that geometry brings in from outside the image.
    """
    b, _, h, w = x.shape
    dev = x.device
    k = len(POOL)
    order = torch.rand(b, k, generator=g, device=dev).argsort(1)
    picked = torch.zeros(b, k, dtype=torch.bool, device=dev)
    picked.scatter_(1, order[:, : min(n, k)], True)
    picked &= apply.view(-1, 1)
    mag = uniform(g, (b, k), magnitude[0], magnitude[1], dev)
    sign = torch.where(torch.rand(b, k, generator=g, device=dev) < 0.5, -1.0, 1.0)
    signed = mag * sign

    def on(name: str) -> torch.Tensor:
        return picked[:, _INDEX[name]]

    def val(name: str) -> torch.Tensor:
        return signed[:, _INDEX[name]]

    zero = torch.zeros(b, device=dev)
    theta = geometry.select(on("rotate"), geometry.rotation(30.0 * val("rotate"), h, w))
    theta = theta @ geometry.select(on("shear_x"), geometry.shear(0.3 * val("shear_x"), zero, h, w))
    theta = theta @ geometry.select(on("shear_y"), geometry.shear(zero, 0.3 * val("shear_y"), h, w))
    dx = torch.where(on("translate_x"), 0.3 * w * val("translate_x"), zero)
    dy = torch.where(on("translate_y"), 0.3 * h * val("translate_y"), zero)
    theta = theta @ geometry.translation(dx, dy, h, w)
    x = x.clone()  # edited in place below

    def keep(name: str, fn: Callable[[torch.Tensor, Index], torch.Tensor]) -> None:
        _apply_some(x, on(name), fn)

    geo = picked[:, _INDEX["rotate"] :].any(1)
    _apply_some(x, geo, lambda xs, i: geometry.warp(xs, theta[i], fill=fill))

    keep("autocontrast", lambda xs, i: colour.autocontrast(xs))
    keep("equalize", lambda xs, i: colour.equalize(xs))
    for name, fn in _FACTOR_OPS.items():
        factor = 1.0 + 0.9 * val(name)
        keep(name, lambda xs, i, fn=fn, factor=factor: fn(xs, factor[i]))
    bits = 8.0 - torch.floor(4.0 * mag[:, _INDEX["posterize"]])
    keep("posterize", lambda xs, i: colour.posterize(xs, bits[i]))
    threshold = 1.0 - mag[:, _INDEX["solarize"]]
    keep("solarize", lambda xs, i: colour.solarize(xs, threshold[i]))
    return x


def _apply_some(
    x: torch.Tensor, mask: torch.Tensor, fn: Callable[[torch.Tensor, Index], torch.Tensor]
) -> None:
    """Replace, in place, the samples of ``x`` selected by ``mask`` ``(B,)`` by ``fn`` of them.

    ``fn(xs, i)`` gets the selected samples and the index that selects their parameters. On
    GPUs it runs on the whole batch and ``torch.where`` keeps the selected (no host sync); on
    CPUs only on the selected samples, about n / 14 of the batch per op.
    """
    if x.is_cuda:
        x.copy_(torch.where(mask.view(-1, 1, 1, 1), fn(x, slice(None)), x))
        return
    idx = mask.nonzero().squeeze(1)
    if idx.numel():
        x.index_copy_(0, idx, fn(x.index_select(0, idx), idx))
