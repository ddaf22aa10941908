"""Rotation prediction (RotNet): classify by how many quarter turns an image was rotated.

Gidaris, Singh & Komodakis 2018, "Unsupervised Representation Learning by Predicting Image
Rotations", https://arxiv.org/abs/1803.07728. To tell 0 from 180 degrees the network has to
know which way up objects are, so it learns what they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.losses import cross_entropy
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.models.heads import mlp

ROTATION_NOTE = (
    "Rotation prediction needs images with a natural orientation. On shapes it is close to "
    "meaningless: the shapes are drawn at random angles and most are rotation-symmetric (a "
    "square turned 90 degrees is the same square), so no network can tell the rotations "
    "apart. Measure it on digits or natural images."
)


def transform(x: torch.Tensor, kinds: torch.Tensor, flips: bool = False) -> torch.Tensor:
    """Per-sample rotation or flip of square images x (B, C, H, W) by ``kinds`` (B,): 0-3
    quarter turns counter-clockwise; with ``flips``, also 4 a horizontal and 5 a vertical flip."""
    if x.shape[-1] != x.shape[-2]:
        raise ValueError("rotation prediction needs square images")
    variants = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
    if flips:
        variants += [x.flip(3), x.flip(2)]
    stacked = torch.stack(variants)  # (T, B, C, H, W)
    return stacked[kinds, torch.arange(x.shape[0], device=x.device)]


@dataclass
class RotationConfig:
    all_rotations: bool = param(
        False, "Feed every image in all 4 rotations (6 with flips; the paper's choice, 4x the "
        "compute per image) instead of one random rotation per image. " + ROTATION_NOTE)
    # off: on digits, 180 s, kNN 0.972 with flips, as without (0.964 to 0.978; BENCHMARKS.md)
    flips: bool = param(
        False, "Also predict a horizontal and a vertical flip: a 6-way task (SESEMI's, Tran "
        "2019) that asks for handedness too (measurements: BENCHMARKS.md).")
    # 256: on digits, 180 s, kNN 0.964 with 256, 0.861 with 0, untrained 0.883 (BENCHMARKS.md)
    head_hidden_dim: int = param(
        256, "Hidden width of the rotation classifier (units); 0 = a linear head on h. With a "
        "linear head h itself becomes a rotation detector and loses what tells images apart "
        "(RotNet finds the blocks nearest the head the most specific to the pretext task); an "
        "MLP head keeps h general (measurements: BENCHMARKS.md).", 0, 8192)


@METHODS.register("rotation")
class Rotation(Method):
    name = "rotation"
    Config = RotationConfig
    summary = "Predictive: classify the rotation (0/90/180/270) of an image; not for shapes."
    paper = "https://arxiv.org/abs/1803.07728"
    default_preset = "crop_flip"
    exact_accumulation = True  # a mean over images (up to BatchNorm's statistics)
    data_caveats = {"shapes": ROTATION_NOTE}

    def __init__(self, backbone: nn.Module, cfg: RotationConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        d, k = backbone.out_dim, 6 if cfg.flips else 4
        self.kinds = k  # 4 rotations, and 2 flips with ``flips``
        self.head = mlp(d, cfg.head_hidden_dim, k) if cfg.head_hidden_dim else nn.Linear(d, k)

    def training_step(self, batch: Batch) -> StepOutput:
        x = batch.view(0)  # (B, C, H, W)
        b, k = x.shape[0], self.kinds
        if self.cfg.all_rotations:
            kinds = torch.arange(k, device=x.device).repeat_interleave(b)  # (kB,)
            x = x.repeat(k, 1, 1, 1)
        else:
            kinds = torch.randint(k, (b,), device=x.device, generator=batch.generator)
        logits = self.head(self.backbone(transform(x, kinds, self.cfg.flips)))  # (B', k)
        loss = cross_entropy(logits, kinds)
        return StepOutput(loss, {"rot_acc": (logits.argmax(1) == kinds).float().mean()})
