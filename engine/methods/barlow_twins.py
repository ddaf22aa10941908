"""Barlow Twins: make the cross-correlation matrix of the two views' projections the identity.

Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy Reduction",
https://arxiv.org/abs/2103.03230. The diagonal term makes each dimension invariant to the
augmentations; the off-diagonal term decorrelates dimensions, which is what stops collapse.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.distributed import gather
from engine.losses import barlow_twins
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.models.heads import mlp


@dataclass
class BarlowTwinsConfig:
    lambda_offdiag: float = param(
        5e-3, "Weight lambda of the off-diagonal (redundancy-reduction) term. Paper: 5.1e-3 at "
        "8192 dimensions. Teaching switch: 0 leaves only the invariance term, and the "
        "dimensions become copies of each other (dimensional collapse).", 0.0, 1.0)
    proj_hidden_dim: int = param(1024, "Projector hidden width (units). Paper: 8192.", 8, 16384)
    proj_dim: int = param(1024, "Projection z dimension (units). Paper: 8192; wider helps, "
                          "at the cost of a D x D correlation matrix.", 2, 16384)
    proj_layers: int = param(3, "Projector depth (linear layers). Paper: 3.", 1, 4)


@METHODS.register("barlow_twins")
class BarlowTwins(Method):
    name = "barlow_twins"
    Config = BarlowTwinsConfig
    summary = "Redundancy reduction: cross-correlation of the two views towards the identity."
    paper = "https://arxiv.org/abs/2103.03230"
    default_preset = "colour_invariant"
    sync_batchnorm = True  # the reference code's SyncBatchNorm
    #: the usual causes of a collapse of this method, by kind (complete | dimensional)
    collapse_causes = {
        "complete": [
            "Batch normalisation of the embeddings removed: the cross-correlation loss needs "
            "standardised dimensions (Zbontar et al. 2021, https://arxiv.org/abs/2103.03230).",
        ],
        "dimensional": [
            "Off-diagonal (redundancy) weight lambda set to 0: nothing stops all dimensions "
            "from encoding the same feature.",
            "Projector too narrow: Barlow Twins gains from wide projectors (8192 in the paper).",
        ],
    }

    def __init__(self, backbone: nn.Module, cfg: BarlowTwinsConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.projector = mlp(
            backbone.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, layers=cfg.proj_layers
        )

    def training_step(self, batch: Batch) -> StepOutput:
        x0, x1 = batch.view(0), batch.view(1)  # (B, C, H, W) each
        z0 = self.projector(self.backbone(x0))  # (B, d)
        z1 = self.projector(self.backbone(x1))
        z0, z1 = gather(z0), gather(z1)  # (N*B, d): correlations of the global batch
        loss = barlow_twins(z0, z1, self.cfg.lambda_offdiag)
        # Per-dimension loss: comparable across projector widths.
        return StepOutput(loss, {"loss_per_dim": loss.detach() / torch.tensor(z0.shape[1])})
