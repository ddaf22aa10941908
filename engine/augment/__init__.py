"""Augmentations declared once as data, executed batched on the training device.

Every op is declared in :data:`OPS` (parameters with ranges and help, a default probability);
a view is a list of op dicts; :class:`Augmenter` runs views on ``uint8`` batches with per-sample
random parameters drawn from an explicit generator, and :func:`preview_grid` shows them through
the same code path. Presets from the papers live in ``assets/presets/augment/*.json``.

    aug = Augmenter(resolve_views(cfg.augment), mean=(0.5,), std=(0.25,))
    g = torch.Generator(device=x.device).manual_seed(0)
    x0, x1 = aug.views(x, 2, g)  # x: uint8 (B, C, H, W) -> float32 (B, C, H, W) each
"""

from engine.augment.ops import OPS, OpSpec, Param, validate_view
from engine.augment.pipeline import Augmenter, resolve_views
from engine.augment.presets import list_presets, preset_info, preset_views
from engine.augment.preview import preview_grid

__all__ = [
    "OPS",
    "Augmenter",
    "OpSpec",
    "Param",
    "list_presets",
    "preset_info",
    "preset_views",
    "preview_grid",
    "resolve_views",
    "validate_view",
]
