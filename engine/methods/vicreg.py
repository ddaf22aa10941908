"""VICReg: invariance (MSE between views), variance (keep every dimension's std above 1) and
covariance (decorrelate dimensions), each branch regularised on its own.

Bardes, Ponce & LeCun 2021, "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning", https://arxiv.org/abs/2105.04906.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from engine.distributed import gather
from engine.losses import vicreg_terms
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.models.heads import mlp


@dataclass
class VICRegConfig:
    sim_weight: float = param(
        25.0, "lambda, weight of the invariance (mean squared error) term. Paper: 25.", 0.0, 1000.0)
    var_weight: float = param(
        25.0, "mu, weight of the variance hinge that keeps each dimension's std at 1 or more. "
        "Paper: 25. Teaching switch: 0 lets the embeddings shrink to a point.", 0.0, 1000.0)
    cov_weight: float = param(
        1.0, "nu, weight of the covariance (decorrelation) term. Paper: 1. Teaching switch: 0 "
        "lets dimensions become copies of each other (dimensional collapse).", 0.0, 1000.0)
    proj_hidden_dim: int = param(1024, "Projector hidden width (units). Paper: 8192.", 8, 16384)
    proj_dim: int = param(1024, "Projection z dimension (units). Paper: 8192.", 2, 16384)
    proj_layers: int = param(3, "Projector depth (linear layers). Paper: 3.", 1, 4)


@METHODS.register("vicreg")
class VICReg(Method):
    name = "vicreg"
    Config = VICRegConfig
    summary = "Variance-invariance-covariance: no negatives, explicit anti-collapse terms."
    paper = "https://arxiv.org/abs/2105.04906"
    default_preset = "byol"
    sync_batchnorm = True  # the reference code's SyncBatchNorm
    #: the usual causes of a collapse of this method, by kind (complete | dimensional)
    collapse_causes = {
        "complete": [
            "Variance weight set to 0: nothing keeps the embeddings spread, and they collapse "
            "(Bardes et al. 2022, https://arxiv.org/abs/2105.04906).",
            "Invariance weight far larger than the variance weight.",
        ],
        "dimensional": [
            "Covariance weight set to 0: dimensions become copies of each other.",
        ],
    }

    def __init__(self, backbone: nn.Module, cfg: VICRegConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.projector = mlp(
            backbone.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, layers=cfg.proj_layers
        )

    def training_step(self, batch: Batch) -> StepOutput:
        x0, x1 = batch.view(0), batch.view(1)  # (B, C, H, W) each
        z0 = self.projector(self.backbone(x0))  # (B, d)
        z1 = self.projector(self.backbone(x1))
        z0, z1 = gather(z0), gather(z1)  # (N*B, d): variances and covariances of the global batch
        t = vicreg_terms(z0, z1)
        c = self.cfg
        loss = (c.sim_weight * t["invariance"] + c.var_weight * t["variance"]
                + c.cov_weight * t["covariance"])
        return StepOutput(loss, {k: v.detach() for k, v in t.items()})
