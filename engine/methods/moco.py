"""MoCo v2: a momentum key encoder and a queue of keys from earlier batches as negatives.

He et al. 2019, "Momentum Contrast for Unsupervised Visual Representation Learning",
https://arxiv.org/abs/1911.05722; Chen et al. 2020, "Improved Baselines with Momentum
Contrastive Learning" (MoCo v2: MLP projector, stronger augmentation, temperature 0.2),
https://arxiv.org/abs/2003.04297.

Shuffle-BN on one device: MoCo runs each GPU's batch-norm on its own slice of the batch and
shuffles the keys across GPUs, so a query and its key never share batch statistics (otherwise
the network can find its positive through them and the loss drops without learning). Here the
batch is cut into ``bn_groups`` slices that stand for GPUs, by batch norms that normalise each
slice by its own statistics in one pass (``engine.models.split_batchnorm``): queries in order,
keys after a random permutation, put back in order after.

Shuffle-BN on several processes (torchrun), as in the paper's code (``_batch_shuffle_ddp``):
the key images of every process are gathered, permuted by rank 0's draw, and each process
encodes its share of the shuffled batch, its batch norms on ``bn_groups / N`` slices of it
(``bn_groups`` counts the slices of the whole global batch); the keys are gathered back and
put in image order. The queue receives the keys of every process, in rank order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine import distributed
from engine.losses import moco_logits
from engine.methods.base import METHODS, Batch, Method, StepOutput, param
from engine.methods.ema import ema_update, frozen_copy
from engine.models.heads import mlp
from engine.models.split_batchnorm import SplitBatchNorm


@dataclass
class MoCoConfig:
    temperature: float = param(
        0.2, "Softmax temperature of InfoNCE (MoCo v2: 0.2; v1: 0.07).", 0.01, 10.0)
    queue_size: int = param(
        4096, "K, number of keys kept as negatives (images). Paper: 65536 on ImageNet; a few "
        "thousand suits small data sets, and it must be well below the train split size so "
        "the queue holds no stale copy of the current image.", 0, 262144)
    momentum: float = param(
        0.99, "Key-encoder EMA momentum m per step: key = m*key + (1-m)*query encoder. Paper: "
        "0.999 over hundreds of thousands of steps; 0.99 suits short runs. 0 copies the query "
        "encoder every step.", 0.0, 1.0)
    bn_groups: int = param(
        4, "Shuffle-BN slices (emulated GPUs): batch-norm statistics are computed per slice and "
        "keys are shuffled across slices. 1 switches shuffle-BN off (the cheating leak).", 1, 64)
    proj_hidden_dim: int = param(512, "Projector hidden width (units).", 8, 8192)
    proj_dim: int = param(128, "Projection (key/query) dimension (units).", 2, 4096)
    symmetric: bool = param(
        True, "Use both views as query and key (twice the loss terms per image; MoCo v3 does "
        "this). Off: view 0 is the query, view 1 the key, as in MoCo v2.")


@METHODS.register("moco")
class MoCo(Method):
    name = "moco"
    Config = MoCoConfig
    summary = "Contrastive with a momentum key encoder and a queue of earlier keys as negatives."
    paper = "https://arxiv.org/abs/2003.04297"
    default_preset = "colour_invariant"
    #: the usual causes of a collapse of this method, by kind (complete | dimensional)
    collapse_causes = {
        "complete": [
            "Temperature far too high, or a queue too short to hold enough negatives.",
            "Momentum encoder momentum too low: the queued keys go stale inconsistently.",
        ],
        "dimensional": [
            "Temperature too high or queue too short: weak repulsion between negatives.",
            "No projector head (MoCo v2 adds an MLP head): the loss squeezes the backbone.",
        ],
    }

    queue: torch.Tensor
    queue_ptr: torch.Tensor
    queue_filled: torch.Tensor

    def __init__(self, backbone: nn.Module, cfg: MoCoConfig, num_classes: int) -> None:
        super().__init__(backbone, cfg, num_classes)
        self.projector = mlp(backbone.out_dim, cfg.proj_hidden_dim, cfg.proj_dim)
        slices = max(1, cfg.bn_groups // distributed.world_size())  # this process's share
        SplitBatchNorm.convert(self.backbone, slices)
        SplitBatchNorm.convert(self.projector, slices)
        self.key_backbone = frozen_copy(backbone)
        self.key_projector = frozen_copy(self.projector)
        # Stored normalised, one key per row; random unit vectors until real keys arrive.
        self.register_buffer("queue", F.normalize(torch.randn(cfg.queue_size, cfg.proj_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    def _query(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))  # (B, d); batch norm per slice of x

    @torch.no_grad()
    def _key(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if distributed.world_size() > 1:
            return self._key_across_processes(x, generator)
        perm = torch.randperm(x.shape[0], device=x.device, generator=generator)
        k = self.key_projector(self.key_backbone(x[perm]))  # slices of shuffled images
        k = torch.empty_like(k).index_copy_(0, perm, k)  # un-shuffle: row i is image i again
        return F.normalize(k, dim=1)  # (B, d)

    @torch.no_grad()
    def _key_across_processes(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Keys (b, d) of this process's images x (b, C, H, W), encoded shuffled across every
        process's images (shuffle-BN over GPUs, He et al. 2019, section 3.3)."""
        x_all = distributed.gather(x)  # (N*b, C, H, W)
        perm = distributed.shared_permutation(x_all.shape[0], generator, x.device)
        k = self.key_projector(self.key_backbone(x_all[distributed.local_rows(perm)]))
        k_all = distributed.gather(k)  # (N*b, d), shuffled order
        k_all = torch.empty_like(k_all).index_copy_(0, perm, k_all)  # image order again
        return F.normalize(distributed.local_rows(k_all), dim=1)  # (b, d)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` (B, d) over the oldest entries of the ring buffer."""
        size = self.queue.shape[0]
        if size == 0:
            return
        keys = keys[-size:].to(self.queue.dtype)
        n = keys.shape[0]
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % size
        self.queue[idx] = keys
        self.queue_ptr.copy_((self.queue_ptr + n) % size)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + n, max=size))

    def training_step(self, batch: Batch) -> StepOutput:
        x0, x1 = batch.view(0), batch.view(1)  # (B, C, H, W) each
        queue = self.queue.clone() if self.cfg.queue_size else None  # (K, d), before this batch
        pairs = [(x0, x1), (x1, x0)] if self.cfg.symmetric else [(x0, x1)]
        losses, accs, keys = [], [], []
        for xq, xk in pairs:
            q = self._query(xq)
            k = self._key(xk, batch.generator)
            logits, labels = moco_logits(q, k, queue, self.cfg.temperature)  # (B, 1+K), (B,)
            losses.append(F.cross_entropy(logits, labels))
            accs.append((logits.argmax(1) == 0).float().mean())
            keys.append(k)
        self.enqueue(torch.cat([distributed.gather(k) for k in keys]))  # every process's, in order
        loss = torch.stack(losses).mean()
        return StepOutput(loss, {"contrast_acc": torch.stack(accs).mean()})

    def on_step_end(self, progress: float) -> None:
        ema_update(self.key_backbone, self.backbone, self.cfg.momentum)
        ema_update(self.key_projector, self.projector, self.cfg.momentum)
