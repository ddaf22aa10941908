"""Backbones (image -> feature ``h``) and heads built from one :func:`mlp` factory."""

from engine.models.backbones import BACKBONES, build_backbone
from engine.models.heads import mlp

__all__ = ["BACKBONES", "build_backbone", "mlp"]
