"""Triplet loss: negatives farther from an anchor than its positives, by at least a margin.
Batch-all mining (every valid triplet in the batch) by default, or batch-hard (for every
anchor, the farthest positive and the nearest negative).

Schroff et al. 2015 (FaceNet), https://arxiv.org/abs/1503.03832; batch-all and batch-hard
mining from Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss for Person
Re-Identification", https://arxiv.org/abs/1703.07737.

Both views of every image are anchors (2B embeddings on the unit sphere). Positives share the
anchor's class; an unlabelled image's only positive is its own other view.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.distributed import gather
from engine.losses import triplet_batch_all, triplet_batch_hard
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.methods.pair_labels import view_labels
from engine.models.heads import mlp


@dataclass
class TripletConfig:
    margin: float = param(
        0.3, "m: the nearest negative must be at least m farther than the farthest positive. "
        "Distances are between unit vectors, in [0, 2].", 0.0, 2.0)
    # all: on shapes, batch-hard from a fresh network collapses every embedding to one point
    # within 30 steps (mean cosine 0.999, loss stuck at m) and kNN stays near 0.3; batch-all
    # reaches 0.70 in 60 s (BENCHMARKS.md, "Methods on shapes")
    mining: str = param(
        "all", "all: average over every triplet in the batch that violates the margin. hard: "
        "only the farthest positive and nearest negative of each anchor, which from a fresh "
        "network can collapse every embedding to one point (loss stuck at m) "
        "(measurements: BENCHMARKS.md).", choices=("all", "hard"))
    squared: bool = param(False, "Use squared Euclidean distances instead of distances.")
    proj_hidden_dim: int = param(512, "Projector hidden width (units).", 8, 8192)
    proj_dim: int = param(128, "Projection z dimension (units).", 2, 4096)


@METHODS.register("triplet")
class Triplet(Method):
    name = "triplet"
    Config = TripletConfig
    summary = "Metric learning: positives closer than negatives by a margin (batch-all/hard)."
    paper = "https://arxiv.org/abs/1703.07737"
    needs_labels = True
    default_preset = "simclr"

    def __init__(self, backbone: nn.Module, cfg: TripletConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.projector = mlp(backbone.out_dim, cfg.proj_hidden_dim, cfg.proj_dim)

    def training_step(self, batch: Batch) -> StepOutput:
        x = torch.cat([batch.view(0), batch.view(1)])  # (2B, C, H, W)
        z = F.normalize(self.projector(self.backbone(x)), dim=1)  # (2B, d)
        z = torch.cat([gather(view) for view in z.chunk(2)])  # (2NB, d): mine every process's
        labels = view_labels(gather(batch.y), self.num_classes)  # (2NB,)
        mine = triplet_batch_all if self.cfg.mining == "all" else triplet_batch_hard
        loss = mine(z, labels, self.cfg.margin, squared=self.cfg.squared)
        return StepOutput(loss)
