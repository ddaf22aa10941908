"""Supervised cross-entropy: a linear classifier on the backbone feature ``h``.

The baseline every representation is compared against (and the other half of the
SupCon-vs-cross-entropy comparison, https://arxiv.org/abs/2004.11362).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from engine.losses import cross_entropy
from engine.methods.base import METHODS, Batch, Method, StepOutput, param


@dataclass
class CrossEntropyConfig:
    label_smoothing: float = param(
        0.0, "Label smoothing epsilon (0 = plain cross-entropy).", 0, 0.5
    )
    labelled_only: bool = param(
        False, "Draw every batch from the labelled images only (at random, with replacement): "
        "when only some images have labels (data.labels_per_class) the others give "
        "cross-entropy nothing to learn from. The baseline of the semi-supervised methods.")


@METHODS.register("cross_entropy")
class CrossEntropy(Method):
    name = "cross_entropy"
    Config = CrossEntropyConfig
    summary = "Supervised baseline: softmax classifier on h, one augmented view."
    paper = "https://arxiv.org/abs/2004.11362"
    needs_labels = True
    default_preset = "crop_flip"
    exact_accumulation = True  # a mean over images (up to BatchNorm's statistics)

    def __init__(self, backbone: nn.Module, cfg: CrossEntropyConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        if num_classes < 2:
            raise ValueError("cross-entropy needs a labelled data set with at least 2 classes")
        self.classifier = nn.Linear(backbone.out_dim, num_classes)

    def labelled_fraction(self) -> float | None:
        return 1.0 if self.cfg.labelled_only else None

    def training_step(self, batch: Batch) -> StepOutput:
        logits = self.classifier(self.backbone(batch.view(0)))  # (B, num_classes)
        loss = cross_entropy(logits, batch.y, label_smoothing=self.cfg.label_smoothing)
        labelled = batch.y >= 0
        acc = (logits.argmax(1) == batch.y)[labelled].float().mean()
        return StepOutput(loss, {"train_acc": acc})
