"""Batch norm over the global batch of several processes, on any device (CPU included).

BYOL, SimSiam, Barlow Twins and VICReg normalise with statistics of the whole batch across
GPUs ("cross-replica" / SyncBN: Grill et al. 2020, https://arxiv.org/abs/2006.07733, appendix
B; Chen & He 2020, https://arxiv.org/abs/2011.10566, section 4; the Barlow Twins and VICReg
reference code convert the whole model with ``nn.SyncBatchNorm``). ``torch.nn.SyncBatchNorm``
accepts only GPU tensors; this one sums the per-channel ``sum`` and ``sum of squares`` over
processes with a differentiable all-reduce (:func:`engine.distributed.all_reduce_sum`), so
the same code runs on gloo in the tests and NCCL on GPUs. On one process, or in eval mode, it
is plain batch norm.
"""

from __future__ import annotations

import torch
from torch import nn

from engine import distributed
from engine.models.split_batchnorm import sharing


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """``nn.BatchNorm1d`` / ``2d`` whose training statistics are those of the global batch.

    Input (b, C) or (b, C, H, W) on each process, every process with the same b. Mean and the
    biased variance over all ``N * b`` samples (and positions) normalise; the running variance
    gets the unbiased one, as batch norm's does. Parameters and buffers are batch norm's, so
    state dicts load either way.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected input of 2 or more dimensions (N, C, ...), got {x.dim()}")

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """``module`` with every ``BatchNorm1d/2d`` replaced by a :class:`SyncBatchNorm`
        sharing its parameters and buffers (MoCo's :class:`SplitBatchNorm` is left alone)."""
        if type(module) in (nn.BatchNorm1d, nn.BatchNorm2d):
            return sharing(cls, module)
        for name, child in module.named_children():
            setattr(module, name, cls.convert(child))
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or distributed.world_size() == 1:
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        n = x.numel() // c * distributed.world_size()
        stats = distributed.all_reduce_sum(torch.cat([xf.sum(dims), (xf * xf).sum(dims)]))
        mean = stats[:c] / n  # (C,)
        var = (stats[c:] / n - mean * mean).clamp_min(0.0)  # (C,), biased
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                     else self.momentum)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / max(n - 1, 1), m)
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)
