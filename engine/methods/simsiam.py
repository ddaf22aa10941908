"""SimSiam: two views through one network; a predictor on one branch, a stop-gradient on the
other. No negatives, no momentum encoder: the stop-gradient alone prevents collapse.

Chen & He 2020, "Exploring Simple Siamese Representation Learning",
https://arxiv.org/abs/2011.10566.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.losses import negative_cosine
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.models.heads import mlp


@dataclass
class SimSiamConfig:
    stop_gradient: bool = param(
        True, "Stop the gradient through the target branch z. Teaching switch: without it "
        "SimSiam collapses completely within a few hundred steps (paper, figure 2).")
    predictor: bool = param(
        True, "Put the predictor MLP h on one branch. Teaching switch: without it the loss is "
        "minimised by a constant output and SimSiam collapses (paper, table 1).")
    fixed_predictor_lr: bool = param(
        True, "Keep the predictor's learning rate fixed at the base rate instead of decaying it "
        "with the schedule (the paper's best setting, section 4.2).")
    proj_hidden_dim: int = param(512, "Projector hidden width (units). Paper: 2048.", 8, 8192)
    proj_dim: int = param(512, "Projection z dimension (units). Paper: 2048.", 2, 8192)
    pred_hidden_dim: int = param(
        128, "Predictor bottleneck width (units); the paper uses a quarter of the projection "
        "dimension (512 for 2048).", 2, 8192)


@METHODS.register("simsiam")
class SimSiam(Method):
    name = "simsiam"
    Config = SimSiamConfig
    summary = "Siamese views, predictor on one side, stop-gradient on the other; no negatives."
    paper = "https://arxiv.org/abs/2011.10566"
    default_preset = "colour_invariant"
    sync_batchnorm = True  # the paper's SyncBN, section 4
    #: the usual causes of a collapse of this method, by kind (complete | dimensional)
    collapse_causes = {
        "complete": [
            "Stop-gradient missing on the target branch: without it SimSiam collapses at once "
            "(Chen & He 2020, https://arxiv.org/abs/2011.10566, sec. 4.1).",
            "Predictor removed or made the identity: SimSiam needs the predictor MLP.",
            "Predictor learning rate decayed with the schedule: the paper keeps it fixed.",
        ],
    }

    def __init__(self, backbone: nn.Module, cfg: SimSiamConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        # The CIFAR variant of the paper: a 2-layer projector ending in a BN without affine.
        self.projector = mlp(
            backbone.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, last_batch_norm=True
        )
        self.predictor = (
            mlp(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim) if cfg.predictor else nn.Identity()
        )

    def _distance(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.cfg.stop_gradient:
            return negative_cosine(p, z.detach())  # D(p, stopgrad(z)), eq. 3
        return -F.cosine_similarity(p.float(), z.float(), dim=1).mean()  # gradient into z too

    def training_step(self, batch: Batch) -> StepOutput:
        x0, x1 = batch.view(0), batch.view(1)  # (B, C, H, W) each
        z0 = self.projector(self.backbone(x0))  # (B, d)
        z1 = self.projector(self.backbone(x1))
        p0, p1 = self.predictor(z0), self.predictor(z1)  # (B, d)
        loss = 0.5 * (self._distance(p0, z1) + self._distance(p1, z0))
        # The paper's collapse monitor: std of the l2-normalised output, healthy ~ 1/sqrt(d).
        z_std = F.normalize(z0.detach().float(), dim=1).std(dim=0).mean()
        return StepOutput(loss, {"z_std": z_std})

    def param_groups(self) -> list[dict]:
        if not (self.cfg.fixed_predictor_lr and self.cfg.predictor):
            return super().param_groups()
        pred = {id(p) for p in self.predictor.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in pred]
        return [{"params": rest}, {"params": list(self.predictor.parameters()), "fixed_lr": True}]
