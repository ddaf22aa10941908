"""Batched photometric ops with per-sample parameters: broadcast arithmetic, no loop over samples.

Images are float ``(B, C, H, W)`` in ``[0, 1]`` with ``C`` 1 or 3; per-sample factors are
``(B,)``. Colour-only ops (saturation, hue, grayscale) leave 1-channel images unchanged.
Results are clamped to ``[0, 1]`` after every op, as torchvision does.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's convert("L") and torchvision

# RGB -> YIQ (NTSC); hue is a rotation of the (I, Q) chroma plane, luma Y untouched. The same
# construction as NVIDIA DALI's hue op: one 3x3 matrix per sample instead of an HSV round trip.
_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=torch.float64,
)


@functools.cache
def constants(device: torch.device) -> dict[str, torch.Tensor]:
    """Per-device constants, made once: a host-to-device copy in every call would stall CUDA.

    ``luma`` (3,); ``hue`` (3, 3, 3): the hue matrix for angle t is
    ``hue[0] + cos(t) hue[1] + sin(t) hue[2]`` (``YIQ^-1 R(t) YIQ`` expanded).
    """
    inv = torch.linalg.inv(_YIQ)
    y, chroma = inv[:, :1] @ _YIQ[:1], inv[:, 1:]
    turn = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)  # HSV's direction
    hue = torch.stack([y, chroma @ _YIQ[1:], chroma @ turn @ _YIQ[1:]]).float()
    return {"luma": torch.tensor(LUMA, device=device), "hue": hue.to(device)}


def _per_sample(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


def luma(x: torch.Tensor) -> torch.Tensor:
    """Grey level ``(B, 1, H, W)`` of ``x`` ``(B, C, H, W)``."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


def blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``other + factor * (x - other)``, clamped; PIL ImageEnhance's rule (factor 1 = ``x``)."""
    # Written out: torch.lerp with broadcast operands takes a slow path on CPUs.
    return (x - other).mul_(_per_sample(factor)).add_(other).clamp_(0.0, 1.0)


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale pixels by ``factor`` ``(B,)`` (blend with black)."""
    return (x * _per_sample(factor)).clamp_(0.0, 1.0)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with each image's mean grey level."""
    return blend(x, luma(x).mean((1, 2, 3), keepdim=True), factor)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's own grey version (PIL's ``Color``)."""
    return x if x.shape[1] == 1 else blend(x, luma(x), factor)


def hue_matrices(shift: torch.Tensor) -> torch.Tensor:
    """Per-sample RGB matrices ``(B, 3, 3)`` rotating hue by ``shift`` turns (``(B,)``)."""
    basis = constants(shift.device)["hue"]
    t = (2 * math.pi) * shift.view(-1, 1, 1)
    return basis[0] + torch.cos(t) * basis[1] + torch.sin(t) * basis[2]


def hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``shift`` ``(B,)`` turns of the colour wheel (YIQ chroma rotation)."""
    if x.shape[1] == 1:
        return x
    return apply_matrix(x, hue_matrices(shift), torch.zeros_like(x[:, :, 0, 0]))


def apply_matrix(x: torch.Tensor, m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``m @ pixel + t`` on every pixel, clamped: x (B, C, H, W), m (B, C, C), t (B, C).

    One ``baddbmm`` on GPUs; on CPUs a ``(C, C) x (C, HW)`` batched matmul is slow, and C^2
    broadcast multiply-adds are not.
    """
    b, c, h, w = x.shape
    if x.is_cuda:
        y = torch.baddbmm(t.unsqueeze(-1), m, x.reshape(b, c, h * w)).view(b, c, h, w)
        return y.clamp_(0.0, 1.0)
    m, t = m.view(b, c, c, 1, 1), t.view(b, c, 1, 1)
    out = torch.empty_like(x)
    for i in range(c):
        acc = out[:, i]
        torch.mul(x[:, 0], m[:, i, 0], out=acc)
        for j in range(1, c):
            acc.addcmul_(x[:, j], m[:, i, j])
        acc.add_(t[:, i])
    return out.clamp_(0.0, 1.0)


def grayscale(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Luma in every channel where ``mask`` ``(B,)`` is set."""
    if x.shape[1] == 1:
        return x
    return torch.where(_per_sample(mask), luma(x).expand_as(x), x)


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert pixels ``>= threshold`` ``(B,)``; a threshold above 1 leaves the sample as it was."""
    return torch.where(x >= _per_sample(threshold), 1.0 - x, x)


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top ``bits`` ``(B,)`` (1..8) of each 8-bit pixel."""
    step = _per_sample(torch.exp2(8.0 - bits))
    return torch.floor(torch.round(x * 255.0) / step) * step / 255.0


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """Stretch each channel of each sample to the full ``[0, 1]`` range."""
    lo = x.amin((2, 3), keepdim=True)
    hi = x.amax((2, 3), keepdim=True)
    span = hi - lo
    scale = torch.where(span > 0, 1.0 / span.clamp_min(1e-8), torch.ones_like(span))
    lo = torch.where(span > 0, lo, torch.zeros_like(lo))
    return ((x - lo) * scale).clamp_(0.0, 1.0)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per sample and channel, PIL's rule, batched with ``scatter_add``."""
    b, c, h, w = x.shape
    q = torch.round(x * 255.0).long().clamp_(0, 255).view(b * c, h * w)
    hist = torch.zeros(b * c, 256, device=x.device).scatter_add_(
        1, q, torch.ones_like(q, dtype=torch.float32)
    )
    last = 255 - (hist > 0).flip(1).to(torch.uint8).argmax(1, keepdim=True)  # top used level
    step = torch.div(h * w - hist.gather(1, last), 255, rounding_mode="floor")  # (BC, 1)
    lut = torch.div(
        hist.cumsum(1) + torch.div(step, 2, rounding_mode="floor"),
        step.clamp_min(1),
        rounding_mode="floor",
    )
    lut = F.pad(lut, (1, 0))[:, :-1].clamp_(0, 255)
    out = lut.gather(1, q) / 255.0
    return torch.where(step > 0, out, x.view(b * c, h * w)).view(b, c, h, w)


def sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's sharpness: blend with a 3x3 smoothed image, the one-pixel border kept as is.

    PIL's smoothing kernel is ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``: a 3x3 box sum plus
    4 times the centre (``avg_pool2d`` is much faster than a depthwise conv on CPUs).
    """
    h, w = x.shape[2:]
    if h < 3 or w < 3:
        return x
    smooth = x.clone()
    box = F.avg_pool2d(x, 3, stride=1) * 9.0
    smooth[:, :, 1:-1, 1:-1] = (box + 4.0 * x[:, :, 1:-1, 1:-1]) / 13.0
    return blend(x, smooth, factor)


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussians ``(B, 2 * radius + 1)`` for sigmas ``(B,)`` (pixels)."""
    t = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma.view(-1, 1) ** 2))
    return k / k.sum(1, keepdim=True)


def gaussian_blur(
    x: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor, kernel_frac: float
) -> torch.Tensor:
    """Separable Gaussian blur with a kernel per sample, reflect padding.

    The kernel size follows SimCLR (https://arxiv.org/abs/2002.05709, appendix A): about
    ``kernel_frac`` of the image side, odd; samples outside ``mask`` get a unit impulse.
    x: (B, C, H, W); sigma, mask: (B,).
    """
    b, c, h, w = x.shape
    radius = min(max(1, int(kernel_frac * min(h, w)) // 2), min(h, w) - 1)
    k = gaussian_kernels(sigma, radius)  # (B, K)
    impulse = torch.zeros_like(k)
    impulse[:, radius] = 1.0
    k = torch.where(mask.view(-1, 1), k, impulse)
    if not x.is_cuda:
        return _separable_taps(x, k, radius)
    k = k.repeat_interleave(c, 0)  # (B*C, K)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(
        F.pad(y, (radius, radius, 0, 0), mode="reflect"), k.view(b * c, 1, 1, -1), groups=b * c
    )
    y = F.conv2d(
        F.pad(y, (0, 0, radius, radius), mode="reflect"), k.view(b * c, 1, -1, 1), groups=b * c
    )
    return y.view(b, c, h, w)


def _separable_taps(x: torch.Tensor, k: torch.Tensor, radius: int) -> torch.Tensor:
    """The same separable convolution as a sum of shifted copies (faster on CPUs).

    A grouped conv with one group per sample and channel runs slowly on CPUs; a
    multiply-add per tap over the whole batch does not. x: (B, C, H, W); k: (B, K).
    """
    h, w = x.shape[2:]
    taps = k.view(-1, 1, 1, 1, k.shape[1])
    p = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    y = p[..., 0:w] * taps[..., 0]
    for i in range(1, k.shape[1]):
        y.addcmul_(p[..., i : i + w], taps[..., i])
    p = F.pad(y, (0, 0, radius, radius), mode="reflect")
    y = p[:, :, 0:h] * taps[..., 0]
    for i in range(1, k.shape[1]):
        y.addcmul_(p[:, :, i : i + h], taps[..., i])
    return y
