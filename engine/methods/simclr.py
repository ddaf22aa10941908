"""SimCLR: two views, a projector, NT-Xent against the other 2B-2 images in the batch.

Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
https://arxiv.org/abs/2002.05709.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from engine.distributed import gather
from engine.losses import info_nce
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.models.heads import mlp


@dataclass
class SimCLRConfig:
    # 0.1: on shapes, 400 steps, shape kNN 0.49 at 0.1 against 0.40 at 0.5 (BENCHMARKS.md,
    # "What made the self-supervised methods learn shape")
    temperature: float = param(
        0.1, "Softmax temperature of NT-Xent. Low values weigh hard negatives heavily and spread "
        "embeddings out; too low is unstable, too high gives weak, clumped features. 0.1 is the "
        "paper's ImageNet value and learns fastest in short runs; the paper prefers 0.5 for "
        "long CIFAR-10 runs (measurements: BENCHMARKS.md).", 0.01, 10.0)
    projector: bool = param(
        True, "Train through an MLP projector (the loss sees z, the map shows h). Switch off to "
        "see why the projector matters: h then has to discard augmentation information itself.")
    proj_hidden_dim: int = param(512, "Projector hidden width (units).", 8, 8192)
    proj_dim: int = param(128, "Projection z dimension (units).", 2, 4096)


@METHODS.register("simclr")
class SimCLR(Method):
    name = "simclr"
    Config = SimCLRConfig
    summary = "Contrastive: pull two views of an image together, push the rest of the batch away."
    paper = "https://arxiv.org/abs/2002.05709"
    default_preset = "simclr"
    #: the usual causes of a collapse of this method, by kind (complete | dimensional)
    collapse_causes = {
        "complete": [
            "Temperature far too high: negatives barely push apart.",
            "Batch too small: too few negatives per step.",
        ],
        "dimensional": [
            "Temperature too high or batch too small: weak repulsion between negatives.",
            "No projector head: the loss then squeezes the backbone features themselves "
            "(Jing et al. 2022). Some collapse of the projector output z is normal; check h.",
        ],
    }

    def __init__(self, backbone: nn.Module, cfg: SimCLRConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        d = backbone.out_dim
        self.projector = (
            mlp(d, cfg.proj_hidden_dim, cfg.proj_dim) if cfg.projector else nn.Identity()
        )

    def training_step(self, batch: Batch) -> StepOutput:
        x0, x1 = batch.view(0), batch.view(1)  # (B, C, H, W) each
        z0 = self.projector(self.backbone(x0))  # (B, d)
        z1 = self.projector(self.backbone(x1))
        z0, z1 = gather(z0), gather(z1)  # (N*B, d): the negatives of every process
        return StepOutput(info_nce(z0, z1, self.cfg.temperature))
