"""Supervised contrastive learning: every image of the same class is a positive.

Khosla et al. 2020, "Supervised Contrastive Learning", https://arxiv.org/abs/2004.11362.
Unlabelled images (label -1) count only their own other view as positive, so with no labels
the loss falls back to SimCLR's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.distributed import gather
from engine.losses import supcon
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.models.heads import mlp


@dataclass
class SupConConfig:
    temperature: float = param(
        0.1, "Softmax temperature (the paper's 0.1). Lower sharpens class clusters; too low is "
        "unstable.", 0.01, 10.0)
    projector: bool = param(True, "Train through an MLP projector (the map shows h).")
    proj_hidden_dim: int = param(512, "Projector hidden width (units).", 8, 8192)
    proj_dim: int = param(128, "Projection z dimension (units).", 2, 4096)


@METHODS.register("supcon")
class SupCon(Method):
    name = "supcon"
    Config = SupConConfig
    summary = "Supervised contrastive: views of the same class are pulled together."
    paper = "https://arxiv.org/abs/2004.11362"
    needs_labels = True
    # The labels already make the positives differ in colour, pose and size (other images of
    # the class), so SimCLR's colour jitter only slows SupCon down: on shapes, 60 s of SupCon
    # reach shape kNN 0.63 with the simclr preset against 0.9+ with crop_flip (BENCHMARKS.md).
    default_preset = "crop_flip"
    # Two views, a projector and a loss over the batch's class pairs take twice the time of a
    # cross-entropy step: a larger learning rate makes up for half the steps (60 s on shapes,
    # 2-core CPU: shape kNN 0.85 at lr 2e-3 against 0.93 at 8e-3; BENCHMARKS.md)
    train_defaults = {"lr": 8e-3}
    #: the usual causes of a collapse of this method, by kind (complete | dimensional)
    collapse_causes = {
        "complete": [
            "Temperature far too high: same-class and different-class pairs barely differ "
            "(Khosla et al. 2020, https://arxiv.org/abs/2004.11362).",
            "Batch too small, or too few classes per batch.",
        ],
    }

    def __init__(self, backbone: nn.Module, cfg: SupConConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        d = backbone.out_dim
        self.projector = (
            mlp(d, cfg.proj_hidden_dim, cfg.proj_dim) if cfg.projector else nn.Identity()
        )

    def training_step(self, batch: Batch) -> StepOutput:
        x0, x1 = batch.view(0), batch.view(1)
        z0 = self.projector(self.backbone(x0))  # (B, d)
        z1 = self.projector(self.backbone(x1))
        z = gather(torch.stack([z0, z1], dim=1))  # (N*B, 2, d): every process's images
        return StepOutput(supcon(z, gather(batch.y), self.cfg.temperature))
