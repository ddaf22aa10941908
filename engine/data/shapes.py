"""``shapes``: the built-in procedural data set, the teaching default.

Small RGB images of one filled shape on a plain grey background. The class is the shape (8
classes: circle, square, triangle, star, cross, ring, heart, crescent); everything else is a
nuisance drawn at random per image and kept as an extra attribute label to colour the map by:

- ``colour``: the shape's hue, one of six named bins (red, orange, yellow, lime, green, teal),
  with a little hue, saturation and value jitter inside each bin;
- ``background``: one of four grey tones (dark, dim, medium, light), with a faint random linear
  lighting gradient;
- ``size``: every shape fits a circle whose diameter is 40 % to 80 % of the image side
  (small / medium / large);
- ``position``: the centre, anywhere the shape still fits (3 x 3 named cells);
- ``rotation``: any angle (four named quadrants);
- mild Gaussian pixel noise.

Why it is built this way: the colour shortcut lesson. The shape covers a large, coloured part of
the image on a grey background, so the direction of the raw pixel vector is set by the shape's
colour, while the shape itself moves, scales and turns. A kNN on raw pixels therefore finds the
colour almost perfectly and the shape poorly (defaults at 32 px, cosine kNN with k=20 and
weights exp(sim / 0.1): about 0.37 top-1 on shape, 0.94 on colour). A contrastive method
without colour augmentation takes the same shortcut (colour the map by colour: tight clusters;
by shape: a mess). With colour augmentation the shortcut is blurred: the hue bins sit close
together (within SimCLR's +-36 degree hue jitter) and so do the grey tones (within its +-40 %
brightness jitter), while raw pixels, which see the exact values, still tell them apart. What
is left that two views of an image share, and that differs between images, is mostly the shape:
large, distinct and cleanly drawn even at 32 px, which a small CNN learns to see.

Rotations cover the full circle, which makes pixels worse at shape; the price is that predicting
an image rotation (RotNet) has no canonical orientation to learn from on this data set.

Rendering is vectorised over the batch: each pixel's signed distance to the shape (exact polygon
and analytic distance functions evaluated on the pixel grid, in each image's own rotated and
scaled frame) gives an anti-aliased coverage ``clamp(0.5 - d, 0, 1)``; there is no per-image
loop. 12 000 images at 32 px take about half a second on 2 CPU cores. Scene parameters are drawn
before any pixel, so one seed gives the same scenes at every image size; train and test come
from two independent generator streams of that seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from engine.config import DataConfig
from engine.data.base import DATASETS, Dataset, Split

CLASS_NAMES = ["circle", "square", "triangle", "star", "cross", "ring", "heart", "crescent"]

#: hue bin name -> centre hue in degrees (HSV). The bins sit close together on purpose (see the
#: module docstring): SimCLR's hue jitter (+-0.1 turn = +-36 degrees) blurs neighbouring bins,
#: while raw pixels, which see the exact hue, still tell them apart.
HUES: dict[str, float] = {
    "red": 0.0,
    "orange": 25.0,
    "yellow": 50.0,
    "lime": 80.0,
    "green": 115.0,
    "teal": 160.0,
}
HUE_JITTER = 8.0  # degrees either side of a bin centre; keeps neighbouring bins apart

#: background name -> grey level in [0, 1]. Neighbouring tones are within the reach of a +-40 %
#: brightness jitter, so augmentation can blur them too.
BACKGROUNDS: dict[str, float] = {"dark": 0.2, "dim": 0.3, "medium": 0.4, "light": 0.5}
BACKGROUND_JITTER = 0.03  # +- grey level
GRADIENT = 0.08  # largest lighting gradient across the image, in grey levels

SIZE_NAMES = ["small", "medium", "large"]
SIZE_RANGE = (0.20, 0.40)  # radius of the circle each shape fits in, fraction of the side
POSITION_NAMES = [
    f"{v}-{h}" for v in ("top", "middle", "bottom") for h in ("left", "centre", "right")
]
ROTATION_NAMES = ["0-90", "90-180", "180-270", "270-360"]  # degrees, counter-clockwise
NOISE_SIGMA = 0.03  # Gaussian pixel noise, 1 = 255

#: attribute -> names of its values; ``Split.attributes[name]`` holds indices into these lists
ATTRIBUTE_NAMES: dict[str, list[str]] = {
    "colour": list(HUES),
    "background": list(BACKGROUNDS),
    "size": SIZE_NAMES,
    "position": POSITION_NAMES,
    "rotation": ROTATION_NAMES,
}

DEFAULT_TRAIN, DEFAULT_TEST = 10000, 2000
_PIXEL_BUDGET = 2**20  # pixels rendered per chunk (bounds memory at large image sizes)

SDF = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---- signed distance functions in the shape's own frame (y up, inside the unit circle) -------
def _sd_polygon(x: torch.Tensor, y: torch.Tensor, verts: list[tuple[float, float]]) -> torch.Tensor:
    """Exact signed distance to a simple polygon (negative inside); x, y: any equal shapes.

    After Inigo Quilez, https://iquilezles.org/articles/distfunctions2d/.
    """
    x, y = torch.broadcast_tensors(x, y)
    d2 = torch.full_like(x, float("inf"))
    inside = torch.zeros_like(x, dtype=torch.bool)
    n = len(verts)
    for i in range(n):
        (xi, yi), (xj, yj) = verts[i], verts[i - 1]
        ex, ey = xj - xi, yj - yi
        wx, wy = x - xi, y - yi
        t = ((wx * ex + wy * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0)
        bx, by = wx - ex * t, wy - ey * t
        d2 = torch.minimum(d2, bx * bx + by * by)
        c1, c2, c3 = y >= yi, y < yj, ex * wy > ey * wx
        inside ^= (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
    return torch.where(inside, -1.0, 1.0) * d2.sqrt()


def _regular(n: int, radius: float, phase: float = 90.0) -> list[tuple[float, float]]:
    """Vertices of a regular n-gon (counter-clockwise), the first at angle ``phase`` degrees."""
    return [
        (
            radius * math.cos(math.radians(phase + 360.0 * k / n)),
            radius * math.sin(math.radians(phase + 360.0 * k / n)),
        )
        for k in range(n)
    ]


def _star_verts(points: int, outer: float, inner: float) -> list[tuple[float, float]]:
    out = []
    for k in range(2 * points):
        r = outer if k % 2 == 0 else inner
        a = math.radians(90.0 + 180.0 * k / points)
        out.append((r * math.cos(a), r * math.sin(a)))
    return out


def _cross_verts(arm: float, half_width: float) -> list[tuple[float, float]]:
    a, w = arm, half_width
    return [
        (w, w),
        (w, a),
        (-w, a),
        (-w, w),
        (-a, w),
        (-a, -w),
        (-w, -w),
        (-w, -a),
        (w, -a),
        (w, -w),
        (a, -w),
        (a, w),
    ]


_SQUARE = [(0.7, 0.7), (-0.7, 0.7), (-0.7, -0.7), (0.7, -0.7)]
_TRIANGLE = _regular(3, 1.0)  # equilateral, centred on its circumcircle
_STAR = _star_verts(5, 1.0, 0.46)
_CROSS = _cross_verts(0.9, 0.31)


def _sd_heart(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Heart, point down, inside the unit circle (after Inigo Quilez)."""
    s = 1.47  # the reference heart is 1.1 high with its point at the origin
    px, py = x.abs() / s, y / s + 0.55
    lobe = ((px - 0.25) ** 2 + (py - 0.75) ** 2).sqrt() - math.sqrt(2.0) / 4.0
    m = 0.5 * (px + py).clamp_min(0.0)
    body = torch.minimum(px**2 + (py - 1.0) ** 2, (px - m) ** 2 + (py - m) ** 2).sqrt()
    body = body * torch.sign(px - py)
    return torch.where(px + py > 1.0, lobe, body) * s


def _sd_crescent(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A disc with a smaller disc cut out of its right side: a crescent moon opening right."""
    outer = (x * x + y * y).sqrt() - 0.92
    bite = ((x - 0.42) ** 2 + (y - 0.12) ** 2).sqrt() - 0.72
    return torch.maximum(outer, -bite)


SHAPES: dict[str, SDF] = {
    "circle": lambda x, y: (x * x + y * y).sqrt() - 0.86,
    "square": lambda x, y: _sd_polygon(x, y, _SQUARE),
    "triangle": lambda x, y: _sd_polygon(x, y, _TRIANGLE),
    "star": lambda x, y: _sd_polygon(x, y, _STAR),
    "cross": lambda x, y: _sd_polygon(x, y, _CROSS),
    "ring": lambda x, y: ((x * x + y * y).sqrt() - 0.68).abs() - 0.25,
    "heart": _sd_heart,
    "crescent": _sd_crescent,
}


# ---- scene parameters ------------------------------------------------------------------------
def _balanced(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    """n indices in [0, k), each value n // k or n // k + 1 times, in random order: (n,)."""
    return (torch.arange(n) % k)[torch.randperm(n, generator=g)]


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def _bin(u: torch.Tensor, lo: float, hi: float, k: int) -> torch.Tensor:
    """Index of equal-width bins of [lo, hi) that each value falls in: (n,) int64."""
    return ((u - lo) / (hi - lo) * k).floor().clamp(0, k - 1).to(torch.int64)


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV (hue in degrees; s, v in [0, 1]), each (n,), to RGB in [0, 1]: (n, 3)."""
    k = torch.stack([(5.0 + h / 60.0) % 6.0, (3.0 + h / 60.0) % 6.0, (1.0 + h / 60.0) % 6.0], 1)
    f = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return v[:, None] - (v * s)[:, None] * f


def _scenes(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Draw the parameters of n scenes from ``g``. Labels and colours are balanced.

    Returns float64 (n,) geometry in units of the image side (``cx, cy, r``, ``angle`` in
    radians), ``fg`` (n, 3) and ``bg`` (n, 3) RGB in [0, 1], ``grad`` (n, 2) lighting gradient,
    and int64 (n,) ``label`` and attribute indices.
    """
    label = _balanced(n, len(CLASS_NAMES), g)
    colour = _balanced(n, len(HUES), g)
    hue = torch.tensor(list(HUES.values()), dtype=torch.float64)[colour]
    hue = (hue + _uniform(n, -HUE_JITTER, HUE_JITTER, g)) % 360.0
    fg = _hsv_to_rgb(hue, _uniform(n, 0.75, 1.0, g), _uniform(n, 0.8, 1.0, g))

    background = torch.randint(len(BACKGROUNDS), (n,), generator=g)
    grey = torch.tensor(list(BACKGROUNDS.values()), dtype=torch.float64)[background]
    grey = grey + _uniform(n, -BACKGROUND_JITTER, BACKGROUND_JITTER, g)
    bg = grey[:, None].expand(n, 3).clone()
    theta = _uniform(n, 0.0, 2 * math.pi, g)
    strength = _uniform(n, 0.0, GRADIENT, g)
    grad = torch.stack([theta.cos(), theta.sin()], 1) * strength[:, None]

    r = _uniform(n, *SIZE_RANGE, g)
    u, v = _uniform(n, 0.0, 1.0, g), _uniform(n, 0.0, 1.0, g)
    margin = r  # the shapes fit in a circle of radius r: a tip may touch the border
    cx, cy = margin + u * (1 - 2 * margin), margin + v * (1 - 2 * margin)
    degrees = _uniform(n, 0.0, 360.0, g)
    return {
        "label": label,
        "cx": cx,
        "cy": cy,
        "r": r,
        "angle": torch.deg2rad(degrees),
        "fg": fg,
        "bg": bg,
        "grad": grad,
        "colour": colour,
        "background": background,
        "size": _bin(r, *SIZE_RANGE, len(SIZE_NAMES)),
        "position": _bin(v, 0.0, 1.0, 3) * 3 + _bin(u, 0.0, 1.0, 3),
        "rotation": _bin(degrees, 0.0, 360.0, len(ROTATION_NAMES)),
    }


# ---- rendering -------------------------------------------------------------------------------
def _coverage(sc: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """Anti-aliased shape coverage in [0, 1] of each scene: (n, size, size) float32."""
    n = sc["label"].shape[0]
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size  # pixel centres, (S,)
    alpha = torch.empty(n, size, size)
    for c, name in enumerate(CLASS_NAMES):
        sdf = SHAPES[name]
        idx = (sc["label"] == c).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        cx, cy, r = (sc[k][idx].float()[:, None, None] for k in ("cx", "cy", "r"))
        cos, sin = (f(sc["angle"][idx]).float()[:, None, None] for f in (torch.cos, torch.sin))
        dx = (grid[None, None, :] - cx) / r  # (b, 1, S)
        dy = (cy - grid[None, :, None]) / r  # (b, S, 1), y up
        x = cos * dx + sin * dy  # rotate the frame by -angle: the shape turns by +angle
        y = cos * dy - sin * dx  # (b, S, S)
        d = sdf(x, y) * (r * size)  # signed distance in pixels
        alpha[idx] = (0.5 - d).clamp(0.0, 1.0)
    return alpha


def render(sc: dict[str, torch.Tensor], size: int, g: torch.Generator) -> torch.Tensor:
    """Render scenes to uint8 images (n, 3, size, size); pixel noise is drawn from ``g``."""
    alpha = _coverage(sc, size)[:, None]  # (n, 1, S, S)
    grid = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    grad = sc["grad"].float()
    light = (
        grad[:, 0, None, None] * grid[None, None, :] + grad[:, 1, None, None] * grid[None, :, None]
    )
    bg = sc["bg"].float()[:, :, None, None] + light[:, None]  # (n, 3, S, S)
    fg = sc["fg"].float()[:, :, None, None]
    img = torch.lerp(bg, fg.expand_as(bg), alpha)
    img += NOISE_SIGMA * torch.randn(img.shape, generator=g)
    return img.mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)


def _stream(seed: int, split: int) -> torch.Generator:
    """An independent generator for one split of one seed (any int seed, negative included)."""
    state = np.random.SeedSequence([seed & (2**64 - 1), split]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def generate_split(n: int, size: int, seed: int, split: int = 0) -> Split:
    """``n`` images of ``size`` px from stream ``split`` (0 = train, 1 = test) of ``seed``.

    Returns a Split with uint8 images (n, 3, size, size), labels (n,) = shape class and int64
    attributes (n,) ``colour``, ``background``, ``size``, ``position``, ``rotation``.
    """
    if n < 0 or size < 1:
        raise ValueError(f"shapes: need n >= 0 and size >= 1 (got n={n}, size={size})")
    g = _stream(seed, split)
    sc = _scenes(n, g)
    chunk = max(1, _PIXEL_BUDGET // (size * size))
    parts = [
        render({k: v[i : i + chunk] for k, v in sc.items()}, size, g) for i in range(0, n, chunk)
    ]
    images = torch.cat(parts) if parts else torch.empty(0, 3, size, size, dtype=torch.uint8)
    attributes = {k: sc[k] for k in ATTRIBUTE_NAMES}
    return Split(images=images, labels=sc["label"], attributes=attributes)


@DATASETS.register("shapes")
def load_shapes(cfg: DataConfig) -> Dataset:
    """The procedural shapes data set at ``cfg.image_size`` px, deterministic from ``cfg.seed``.

    ``cfg.train_size`` / ``cfg.test_size`` images (0 = 10 000 / 2 000), rendered directly at
    the requested size; train and test are drawn from independent streams.
    """
    n_train = cfg.train_size or DEFAULT_TRAIN
    n_test = cfg.test_size or DEFAULT_TEST
    return Dataset(
        name="shapes",
        train=generate_split(n_train, cfg.image_size, cfg.seed, split=0),
        test=generate_split(n_test, cfg.image_size, cfg.seed, split=1),
        class_names=list(CLASS_NAMES),
        attribute_names={k: list(v) for k, v in ATTRIBUTE_NAMES.items()},
    )
