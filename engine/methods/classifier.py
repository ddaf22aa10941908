"""The second stage of a two-stage recipe: a classifier on a pretrained encoder.

SupCon (Khosla et al. 2020, https://arxiv.org/abs/2004.11362) trains its encoder first, then a
classifier on the frozen encoder; the article that compares it with cross-entropy uses the
head ``dropout 0.5 -> Dense(1000, relu) -> dropout 0.5 -> Dense(classes, softmax)``, trained
with cross-entropy (softmax and log-loss in one numerically safe step here). With
``freeze_encoder: false`` the whole network is fine-tuned instead (the BYOL tutorial's last
step). The encoder comes from another run's checkpoint (``model.init_from``) or from
pretrained weights (``model.pretrained``); with neither it is the seed's random network.

A frozen encoder takes no gradient and stays in eval mode, so neither its weights nor its
BatchNorm statistics change.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.losses import cross_entropy
from engine.methods.base import METHODS, Batch, Method, StepOutput, param


@dataclass
class ClassifierConfig:
    freeze_encoder: bool = param(True, "Train the head only, on the frozen encoder (SupCon's "
                                 "second stage). Off: fine-tune the whole network.")
    hidden_dim: int = param(1000, "Hidden width of the head (units; the article's 1000).",
                            8, 8192)
    dropout: float = param(0.5, "Dropout before and after the hidden layer.", 0, 0.9)


@METHODS.register("classifier")
class Classifier(Method):
    name = "classifier"
    Config = ClassifierConfig
    summary = ("Second stage: a dropout-MLP classifier on another run's encoder "
               "(model.init_from), frozen or fine-tuned.")
    paper = "https://arxiv.org/abs/2004.11362"
    needs_labels = True
    default_preset = "crop_flip"
    exact_accumulation = True  # a mean over images (a frozen encoder has no batch statistics)
    train_defaults = {"lr": 3e-3}

    def __init__(self, backbone: nn.Module, cfg: ClassifierConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        if num_classes < 2:
            raise ValueError("a classifier needs a labelled data set with at least 2 classes")
        self.head = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(backbone.out_dim, cfg.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden_dim, num_classes),
        )
        if cfg.freeze_encoder:
            self.backbone.requires_grad_(False)

    @property
    def freezes_backbone(self) -> bool:
        return bool(self.cfg.freeze_encoder)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.cfg.freeze_encoder:
            self.backbone.eval()  # BatchNorm keeps the encoder's running statistics
        return self

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)  # (B, num_classes)

    def training_step(self, batch: Batch) -> StepOutput:
        x = batch.view(0)
        if self.cfg.freeze_encoder:
            with torch.no_grad():
                h = self.backbone(x)  # (B, D)
        else:
            h = self.backbone(x)
        logits = self.head(h)  # (B, num_classes)
        loss = cross_entropy(logits, batch.y)
        labelled = batch.y >= 0
        acc = (logits.argmax(1) == batch.y)[labelled].float().mean()
        return StepOutput(loss, {"train_acc": acc})
