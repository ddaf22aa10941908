"""FixMatch: confident predictions on a weakly augmented image become hard pseudo-labels for a
strongly augmented version of the same image.

Sohn et al. 2020, "FixMatch: Simplifying Semi-Supervised Learning with Consistency and
Confidence", https://arxiv.org/abs/2001.07685. View 0 of the ``fixmatch`` preset is the weak
augmentation (flip and translate), view 1 the strong one (RandAugment and cutout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.losses import cross_entropy
from engine.methods.base import METHODS, Batch, Method, StepOutput, param


@dataclass
class FixMatchConfig:
    threshold: float = param(
        0.95, "Confidence tau above which a weak-view prediction becomes a pseudo-label "
        "(paper: 0.95). Lower admits more, noisier pseudo-labels early on.", 0.0, 1.0)
    lambda_u: float = param(
        1.0, "Weight of the unlabelled consistency loss (paper: 1).", 0.0, 100.0)
    mu: float = param(
        7.0, "Unlabelled-to-labelled ratio of each batch (paper: 7): a fraction 1/(1+mu) of the "
        "batch is drawn from the labelled images.", 0.1, 64.0)
    temperature: float = param(
        1.0, "Softmax temperature of the weak-view prediction before thresholding (paper: 1, "
        "hard labels are taken either way).", 0.05, 10.0)


@METHODS.register("fixmatch")
class FixMatch(Method):
    name = "fixmatch"
    Config = FixMatchConfig
    summary = "Semi-supervised: confident weak-view predictions supervise the strong view."
    paper = "https://arxiv.org/abs/2001.07685"
    needs_labels = True
    semi_supervised = True
    default_preset = "fixmatch"

    def __init__(self, backbone: nn.Module, cfg: FixMatchConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.classifier = nn.Linear(backbone.out_dim, num_classes)

    def labelled_fraction(self) -> float | None:
        return 1.0 / (1.0 + self.cfg.mu)

    def training_step(self, batch: Batch) -> StepOutput:
        weak, strong = batch.view(0), batch.view(1)  # (B, C, H, W) each
        b = weak.shape[0]
        # One pass over both views, so batch-norm statistics cover both (the paper interleaves).
        logits = self.classifier(self.backbone(torch.cat([weak, strong])))  # (2B, classes)
        logits_w, logits_s = logits[:b], logits[b:]
        sup = cross_entropy(logits_w, batch.y)
        with torch.no_grad():
            probs = F.softmax(logits_w.detach().float() / self.cfg.temperature, dim=1)
            confidence, pseudo = probs.max(dim=1)  # (B,), (B,)
            mask = confidence >= self.cfg.threshold
        # Every image of the batch is "unlabelled" for the consistency term, as in the paper
        # (the unlabelled set includes the labelled images); the mean counts masked-out ones.
        per_image = F.cross_entropy(logits_s.float(), pseudo, reduction="none")  # (B,)
        unsup = (per_image * mask).mean()
        labelled = batch.y >= 0
        logs = {
            "sup_loss": sup.detach(),
            "unsup_loss": unsup.detach(),
            "mask_rate": mask.float().mean(),
            "train_acc": (logits_w.argmax(1) == batch.y)[labelled].float().mean(),
        }
        return StepOutput(sup + self.cfg.lambda_u * unsup, logs)
