"""Batched geometry: per-sample affine matrices, fused into one ``grid_sample`` per view.

Every geometric op is a ``(B, 3, 3)`` matrix that maps *output* coordinates to *input*
coordinates, both normalised to ``[-1, 1]`` over the image edges (``align_corners=False``).
Ops applied in the order ``A`` then ``B`` sample the source at ``M_A @ M_B @ u``, so a view's
crop, flip, rotation and translation become one matrix per sample and the image is resampled
once (one interpolation, one call, no python loop over samples), as in airbench
(https://github.com/KellerJordan/cifar10-airbench). A perspective warp is a ``(B, 3, 3)``
homography in the same coordinates: it joins the product like the others, and the warp then
divides by the third coordinate (``projective=True``).

Rectangles (random erasing, cutout) are per-sample boolean masks built by broadcasting.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.augment.sampling import randint, uniform

_CROP_TRIALS = 10  # candidate crops per sample, as torchvision's RandomResizedCrop


def eye(b: int, device: torch.device) -> torch.Tensor:
    """Identity matrices ``(b, 3, 3)``."""
    return torch.eye(3, device=device).expand(b, 3, 3).clone()


def select(mask: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``m`` where ``mask`` (``(B,)`` bool) is set, the identity elsewhere."""
    return torch.where(mask.view(-1, 1, 1), m, eye(m.shape[0], m.device))


def _affine(
    a: torch.Tensor,
    b: torch.Tensor,
    tx: torch.Tensor,
    c: torch.Tensor,
    d: torch.Tensor,
    ty: torch.Tensor,
) -> torch.Tensor:
    """Stack per-sample entries ``(B,)`` into matrices ``[[a, b, tx], [c, d, ty], [0, 0, 1]]``."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = [
        torch.stack([a, b, tx], -1),
        torch.stack([c, d, ty], -1),
        torch.stack([zero, zero, one], -1),
    ]
    return torch.stack(rows, -2)


def resized_crop(
    g: torch.Generator | None,
    b: int,
    h: int,
    w: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    device: torch.device,
) -> torch.Tensor:
    """Random-resized-crop matrices ``(b, 3, 3)``.

    Like torchvision's RandomResizedCrop: area fraction uniform in ``scale``, log aspect ratio
    uniform in ``log(ratio)``, up to 10 candidates per sample and the first that fits kept
    (drawn all at once); the whole image when none fits. Crops have sub-pixel size and position.
    """
    shape = (b, _CROP_TRIALS)
    area = uniform(g, shape, scale[0], scale[1], device) * (h * w)
    log_r = uniform(g, shape, math.log(ratio[0]), math.log(ratio[1]), device)
    r = torch.exp(log_r)
    cw, ch = torch.sqrt(area * r), torch.sqrt(area / r)  # (b, T) pixels
    fits = (cw <= w) & (ch <= h)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # first candidate that fits
    ok = fits.any(1)
    cw = torch.where(ok, cw.gather(1, first)[:, 0], torch.full_like(ok, w, dtype=cw.dtype))
    ch = torch.where(ok, ch.gather(1, first)[:, 0], torch.full_like(ok, h, dtype=ch.dtype))
    pos = uniform(g, (b, 2), 0.0, 1.0, device)
    cx = cw / 2 + pos[:, 0] * (w - cw)  # crop centre, pixels
    cy = ch / 2 + pos[:, 1] * (h - ch)
    zero = torch.zeros_like(cw)
    return _affine(cw / w, zero, 2 * cx / w - 1, zero, ch / h, 2 * cy / h - 1)


def flip(mask: torch.Tensor, axis: int) -> torch.Tensor:
    """Mirror matrices; ``axis`` 0 = left-right, 1 = top-bottom; identity where not ``mask``."""
    m = eye(mask.shape[0], mask.device)
    m[:, axis, axis] = torch.where(mask, -1.0, 1.0)
    return m


def rotation(degrees: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Matrices rotating the content counter-clockwise by ``degrees`` ``(B,)`` about the centre.

    Rotation happens in pixel units (``D^-1 R D`` with ``D = diag(w/2, h/2)``), so non-square
    images are not sheared.
    """
    t = torch.deg2rad(degrees)
    c, s = torch.cos(t), torch.sin(t)
    zero = torch.zeros_like(t)
    return _affine(c, -s * (h / w), zero, s * (w / h), c, zero)


def shear(sx: torch.Tensor, sy: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Shear matrices: ``x_in = x + sx * y`` and ``y_in = y + sy * x`` in pixel units."""
    one, zero = torch.ones_like(sx), torch.zeros_like(sx)
    return _affine(one, sx * (h / w), zero, sy * (w / h), one, zero)


def shear_degrees(x_deg: torch.Tensor, y_deg: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Shear matrices from angles ``(B,)`` in degrees: factors ``tan(angle)`` (torchvision's
    convention for an x shear: ``x_in = x + tan(sx) * y`` in pixel units)."""
    return shear(torch.tan(torch.deg2rad(x_deg)), torch.tan(torch.deg2rad(y_deg)), h, w)


def perspective(
    g: torch.Generator | None, b: int, distortion: float, device: torch.device
) -> torch.Tensor:
    """Random perspective homographies ``(b, 3, 3)``, output to input coordinates.

    As torchvision's RandomPerspective: each output corner lies inwards of the image corner by
    a uniform amount in ``[0, distortion]`` of half the side, in x and in y independently; the
    homography maps those four points back to the image corners (a batched 8x8 solve).
    """
    src = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], device=device)
    shift = uniform(g, (b, 4, 2), 0.0, distortion, device)
    dst = src - src * shift  # towards the centre: (b, 4, 2)
    x, y = dst[..., 0], dst[..., 1]  # (b, 4) output corners
    u, v = src[:, 0].expand(b, 4), src[:, 1].expand(b, 4)  # where they sample the input
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -x * u, -y * u], -1)  # (b, 4, 8)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -x * v, -y * v], -1)
    a = torch.cat([rows_u, rows_v], 1)  # (b, 8, 8)
    rhs = torch.cat([u, v], 1).unsqueeze(-1)  # (b, 8, 1)
    sol = torch.linalg.solve(a, rhs).squeeze(-1)  # (b, 8)
    return torch.cat([sol, torch.ones(b, 1, device=device)], 1).view(b, 3, 3)


def translation(dx: torch.Tensor, dy: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Matrices moving the content by ``(dx, dy)`` pixels ``(B,)`` each (right, down)."""
    one, zero = torch.ones_like(dx), torch.zeros_like(dx)
    return _affine(one, zero, -2 * dx / w, zero, one, -2 * dy / h)


def random_translation(
    g: torch.Generator | None, b: int, h: int, w: int, fraction: float, device: torch.device
) -> torch.Tensor:
    """Whole-pixel shifts up to ``round(fraction * side)`` each way, as pad-and-crop does."""
    mx, my = round(fraction * w), round(fraction * h)
    dx = randint(g, (b,), -mx, mx, device)
    dy = randint(g, (b,), -my, my, device)
    return translation(dx, dy, h, w)


def _grid(theta: torch.Tensor, h: int, w: int, projective: bool = False) -> torch.Tensor:
    """Sampling grid ``(B, H, W, 2)`` of ``theta``; ``F.affine_grid`` by broadcasting.

    ``affine_grid`` multiplies ``(B, H*W, 3)`` by ``(B, 3, 2)`` with a batched matmul, which
    is slow on CPUs for an inner size of 3; six broadcast multiply-adds are not.
    ``projective``: divide by the third homogeneous coordinate (a perspective warp).
    """
    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1  # centres
    ys = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1
    rows = 3 if projective else 2
    t = theta[:, :rows].reshape(-1, rows, 3, 1, 1)
    gx = t[:, 0, 0] * xs.view(1, 1, w) + (t[:, 0, 1] * ys.view(1, h, 1) + t[:, 0, 2])
    gy = t[:, 1, 0] * xs.view(1, 1, w) + (t[:, 1, 1] * ys.view(1, h, 1) + t[:, 1, 2])
    if projective:
        gw = t[:, 2, 0] * xs.view(1, 1, w) + (t[:, 2, 1] * ys.view(1, h, 1) + t[:, 2, 2])
        gw = torch.where(gw.abs() < 1e-6, torch.full_like(gw, 1e-6), gw)
        gx, gy = gx / gw, gy / gw
    return torch.stack([gx, gy], -1)


def warp(
    x: torch.Tensor,
    theta: torch.Tensor,
    reflect: bool = False,
    fill: float = 0.0,
    projective: bool = False,
) -> torch.Tensor:
    """Resample ``x`` ``(B, C, H, W)`` float through per-sample matrices ``theta`` ``(B, 3, 3)``.

    Bilinear; pixels from outside the image are reflected (``reflect``) or set to ``fill``.
    ``projective``: ``theta`` holds homographies (see :func:`perspective`).
    """
    grid = _grid(theta, x.shape[2], x.shape[3], projective)
    if reflect:
        return F.grid_sample(x, grid, "bilinear", "reflection", align_corners=False)
    if fill == 0.0:
        return F.grid_sample(x, grid, "bilinear", "zeros", align_corners=False)
    # grid_sample fills with zeros only: shift so that zero means `fill`.
    return F.grid_sample(x - fill, grid, "bilinear", "zeros", align_corners=False).add_(fill)


def rect_mask(
    top: torch.Tensor, left: torch.Tensor, rh: torch.Tensor, rw: torch.Tensor, h: int, w: int
) -> torch.Tensor:
    """Bool ``(B, 1, H, W)``: pixels inside each sample's rectangle (pixel units, ``(B,)``)."""
    ys = torch.arange(h, device=top.device, dtype=top.dtype).view(1, 1, h, 1)
    xs = torch.arange(w, device=top.device, dtype=top.dtype).view(1, 1, 1, w)
    t, lft = top.view(-1, 1, 1, 1), left.view(-1, 1, 1, 1)
    return (
        (ys >= t)
        & (ys < t + rh.view(-1, 1, 1, 1))
        & (xs >= lft)
        & (xs < lft + rw.view(-1, 1, 1, 1))
    )


def erasing_rect(
    g: torch.Generator | None,
    b: int,
    h: int,
    w: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random-erasing rectangles as a mask ``(B, 1, H, W)`` and a has-rectangle flag ``(B,)``.

    As torchvision's RandomErasing: whole-pixel sides, up to 10 candidates per sample, no
    erasing for a sample where none fits.
    """
    shape = (b, _CROP_TRIALS)
    area = uniform(g, shape, scale[0], scale[1], device) * (h * w)
    r = torch.exp(uniform(g, shape, math.log(ratio[0]), math.log(ratio[1]), device))
    rh, rw = torch.round(torch.sqrt(area / r)), torch.round(torch.sqrt(area * r))
    fits = (rh < h) & (rw < w) & (rh >= 1) & (rw >= 1)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)
    ok = fits.any(1)
    rh, rw = rh.gather(1, first)[:, 0], rw.gather(1, first)[:, 0]
    pos = uniform(g, (b, 2), 0.0, 1.0, device)
    top = torch.floor(pos[:, 0] * (h - rh + 1))
    left = torch.floor(pos[:, 1] * (w - rw + 1))
    return rect_mask(top, left, rh, rw, h, w), ok


def cutout_rect(
    g: torch.Generator | None,
    b: int,
    h: int,
    w: int,
    size: tuple[float, float],
    device: torch.device,
) -> torch.Tensor:
    """Cutout squares: side ``size`` (fraction of the shorter side) at a uniform centre, clipped."""
    side = torch.round(uniform(g, (b,), size[0], size[1], device) * min(h, w))
    centre = uniform(g, (b, 2), 0.0, 1.0, device)
    top = torch.floor(centre[:, 0] * h) - torch.floor(side / 2)
    left = torch.floor(centre[:, 1] * w) - torch.floor(side / 2)
    return rect_mask(top, left, side, side, h, w)
