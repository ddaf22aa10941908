"""Margin contrastive loss: similar pairs pulled together, dissimilar pairs pushed at least a
margin apart, on Euclidean distances between unit-length projections.

Hadsell, Chopra & LeCun 2006, "Dimensionality Reduction by Learning an Invariant Mapping",
https://doi.org/10.1109/CVPR.2006.100.

Pairs are formed inside the batch from both views of every image (2B embeddings, every
unordered pair once). Where labels are known, two embeddings are similar when their classes
match; an unlabelled image is similar only to its own other view and dissimilar to everything
else. With no labels at all this is the self-supervised variant: view pairs are the positives,
every other pair in the batch a negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.distributed import gather
from engine.losses import pairwise_margin_contrastive
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.methods.pair_labels import view_labels
from engine.models.heads import mlp


@dataclass
class MarginConfig:
    margin: float = param(
        1.0, "m: dissimilar pairs farther apart than m cost nothing. Distances are between "
        "unit vectors, so they lie in [0, 2]; random directions sit near 1.41. 0 = no margin: "
        "nothing pushes dissimilar pairs apart, and every embedding collapses to one point "
        "(lesson margin_collapse).", 0.0, 2.0)
    use_labels: bool = param(
        True, "Form similar pairs from class labels where the image has one. Off: only the two "
        "views of an image are similar (self-supervised).")
    proj_hidden_dim: int = param(512, "Projector hidden width (units).", 8, 8192)
    proj_dim: int = param(128, "Projection z dimension (units).", 2, 4096)


@METHODS.register("margin")
class MarginContrastive(Method):
    name = "margin"
    Config = MarginConfig
    summary = "Metric learning: pull similar pairs together, push others beyond a margin."
    paper = "https://doi.org/10.1109/CVPR.2006.100"
    default_preset = "simclr"

    def __init__(self, backbone: nn.Module, cfg: MarginConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.projector = mlp(backbone.out_dim, cfg.proj_hidden_dim, cfg.proj_dim)

    def training_step(self, batch: Batch) -> StepOutput:
        x = torch.cat([batch.view(0), batch.view(1)])  # (2B, C, H, W)
        z = F.normalize(self.projector(self.backbone(x)), dim=1)  # (2B, d)
        z = torch.cat([gather(view) for view in z.chunk(2)])  # (2NB, d): every process's pairs
        labels = view_labels(gather(batch.y), self.num_classes, self.cfg.use_labels)  # (2NB,)
        return StepOutput(pairwise_margin_contrastive(z, labels, self.cfg.margin))
