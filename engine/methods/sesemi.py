"""SESEMI: supervised cross-entropy on labelled images plus a weighted self-supervised
rotation-and-flip classification on the rest, trained jointly through one backbone.

Tran 2019, "Exploring Self-Supervised Regularization for Supervised and Semi-Supervised
Learning", https://arxiv.org/abs/1906.10343. The pretext has 6 classes: 0, 90, 180 and 270
degree rotations, a horizontal and a vertical flip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.losses import cross_entropy
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.methods.rotation import transform


@dataclass
class SESEMIConfig:
    ss_weight: float = param(
        1.0, "Weight w of the self-supervised rotation-and-flip loss (paper: 1.0, the method's "
        "only hyper-parameter). 0 is plain supervised training.", 0.0, 100.0)
    labelled_fraction: float = param(
        0.5, "Fraction of each batch drawn from the labelled images; the rest is drawn from the "
        "whole train split (paper: equal labelled and unlabelled mini-batches).", 0.01, 1.0)
    unlabelled_only: bool = param(
        False, "Apply the self-supervised loss to unlabelled images only. Off: to every image "
        "of the batch (its labels are free), as in SESEMI's supervised setting.")


@METHODS.register("sesemi")
class SESEMI(Method):
    name = "sesemi"
    Config = SESEMIConfig
    summary = "Semi-supervised: cross-entropy on labels + rotation/flip prediction on the rest."
    paper = "https://arxiv.org/abs/1906.10343"
    needs_labels = True
    semi_supervised = True
    default_preset = "crop_flip"

    def __init__(self, backbone: nn.Module, cfg: SESEMIConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.classifier = nn.Linear(backbone.out_dim, num_classes)
        self.ss_head = nn.Linear(backbone.out_dim, 6)

    def labelled_fraction(self) -> float | None:
        return self.cfg.labelled_fraction

    def training_step(self, batch: Batch) -> StepOutput:
        x = batch.view(0)  # (B, C, H, W), supervised branch
        b = x.shape[0]
        # The pretext branch sees un-augmented images: a random flip in the view would make
        # "flipped" and "not flipped" indistinguishable.
        xs = batch.plain()
        kinds = torch.randint(6, (b,), device=x.device, generator=batch.generator)
        h = self.backbone(torch.cat([x, transform(xs, kinds, flips=True)]))  # (2B, D), one BN pass
        logits, ss_logits = self.classifier(h[:b]), self.ss_head(h[b:])
        sup = cross_entropy(logits, batch.y)
        ss_target = kinds
        if self.cfg.unlabelled_only:
            ss_target = torch.where(batch.y < 0, kinds, torch.full_like(kinds, -1))
        ss = cross_entropy(ss_logits, ss_target)
        labelled = batch.y >= 0
        logs = {
            "sup_loss": sup.detach(),
            "ss_loss": ss.detach(),
            "train_acc": (logits.argmax(1) == batch.y)[labelled].float().mean(),
            "ss_acc": (ss_logits.argmax(1) == kinds).float().mean(),
        }
        return StepOutput(sup + self.cfg.ss_weight * ss, logs)
