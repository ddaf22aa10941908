"""BYOL: an online network predicts the projection a slowly moving target network gives the
other view. No negatives; the predictor and the moving-average target prevent collapse.

Grill et al. 2020, "Bootstrap Your Own Latent", https://arxiv.org/abs/2006.07733.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.losses import byol_loss
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.methods.ema import cosine_momentum, ema_update, frozen_copy
from engine.models.heads import mlp


@dataclass
class BYOLConfig:
    target_momentum: float = param(
        0.97, "Base EMA momentum tau of the target network per step; it rises to 1 on a cosine "
        "schedule over the run. Paper: 0.996 for long ImageNet runs; a run of minutes needs "
        "a target that moves faster (0.97 here). "
        "Teaching switch: 0 makes the target a copy of the online network every step, which "
        "the paper reports collapses.", 0.0, 1.0)
    ema_target: bool = param(
        True, "Keep a separate moving-average target network. Teaching switch: off uses the "
        "online network itself with a stop-gradient as the target (SimSiam-like).")
    predictor: bool = param(
        True, "Put a predictor MLP on the online branch. Teaching switch: without it the two "
        "branches are nearly identical and BYOL collapses to a constant.")
    proj_hidden_dim: int = param(1024, "Projector hidden width (units). Paper: 4096.", 8, 8192)
    proj_dim: int = param(128, "Projection z dimension (units). Paper: 256.", 2, 4096)
    pred_hidden_dim: int = param(1024, "Predictor hidden width (units). Paper: 4096.", 8, 8192)


@METHODS.register("byol")
class BYOL(Method):
    name = "byol"
    Config = BYOLConfig
    summary = "Bootstrap: predict a moving-average target's projection of the other view."
    paper = "https://arxiv.org/abs/2006.07733"
    default_preset = "colour_invariant"
    sync_batchnorm = True  # Grill et al. 2020, appendix B: cross-replica batch norm
    #: the usual causes of a collapse of this method, by kind (complete | dimensional)
    collapse_causes = {
        "complete": [
            "No predictor on the online branch: BYOL collapses without it "
            "(Grill et al. 2020, https://arxiv.org/abs/2006.07733).",
            "Target momentum 0 (or no EMA target): the target then copies the online network "
            "each step and nothing stops the collapse.",
            "Gradient flowing into the target network: it must be updated only by EMA.",
        ],
    }
    # No negatives: the paper finds BYOL far less sensitive to batch size than SimCLR (section
    # 5), so a small batch buys more updates in the same time, and a larger learning rate and a
    # faster target make each count: on shapes, 180 s of a 2-core CPU, the README's CLI line
    # gains +0.17 shape kNN against +0.09 at batch 64, lr 2e-3, tau 0.99 (BENCHMARKS.md)
    train_defaults = {"batch_size": 32, "lr": 4e-3}

    def __init__(self, backbone: nn.Module, cfg: BYOLConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.projector = mlp(backbone.out_dim, cfg.proj_hidden_dim, cfg.proj_dim)
        self.predictor = (
            mlp(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim) if cfg.predictor else nn.Identity()
        )
        self.target_backbone = frozen_copy(backbone) if cfg.ema_target else None
        self.target_projector = frozen_copy(self.projector) if cfg.ema_target else None
        # the current target momentum, a buffer so that checkpoints keep it
        self.register_buffer("momentum_now", torch.tensor(float(cfg.target_momentum)))

    @property
    def tau(self) -> float:
        """The target momentum of the last step (the base momentum before the first)."""
        return float(self.momentum_now)

    @torch.no_grad()
    def _target(self, x: torch.Tensor) -> torch.Tensor:
        return self.target_projector(self.target_backbone(x))  # (B, d)

    def training_step(self, batch: Batch) -> StepOutput:
        x0, x1 = batch.view(0), batch.view(1)  # (B, C, H, W) each
        z0 = self.projector(self.backbone(x0))  # (B, d)
        z1 = self.projector(self.backbone(x1))
        p0, p1 = self.predictor(z0), self.predictor(z1)
        if self.target_backbone is not None:
            t0, t1 = self._target(x0), self._target(x1)
        else:
            t0, t1 = z0.detach(), z1.detach()  # the online network is its own target
        loss = 0.5 * (byol_loss(p0, t1) + byol_loss(p1, t0))
        return StepOutput(loss, {"tau": self.momentum_now.detach().clone()})

    def on_step_end(self, progress: float) -> None:
        if self.target_backbone is None:
            return
        base = self.cfg.target_momentum
        tau = cosine_momentum(base, progress) if base > 0 else 0.0
        self.momentum_now.fill_(tau)
        ema_update(self.target_backbone, self.backbone, tau)
        ema_update(self.target_projector, self.projector, tau)
