"""Batch norm with statistics per slice of the batch: MoCo's shuffle-BN on one device.

MoCo computes batch-norm statistics on each GPU's share of the batch and shuffles the keys
across GPUs, so that a query and its key never share statistics (He et al. 2019, section 3.3,
https://arxiv.org/abs/1911.05722). On one device the batch is cut into ``groups`` slices that
stand for the GPUs. Running the whole network slice by slice does that, but makes every layer
run on a quarter of the batch: on a GPU, MoCo then ran 3.5x slower than SimCLR
(BENCHMARKS.md). :class:`SplitBatchNorm` runs only the batch norms slice by slice; the
convolutions and everything else see the whole batch.
"""

from __future__ import annotations

import torch
from torch import nn


class SplitBatchNorm(nn.modules.batchnorm._BatchNorm):
    """``nn.BatchNorm1d`` / ``2d`` whose training-mode statistics are per slice of the batch.

    In training mode the batch ``(N, C, ...)`` is cut into ``groups`` contiguous slices of
    (nearly) equal size, fewer when the batch is small (never under 2 samples each), and each
    slice is normalised by its own mean and variance, its running statistics updated slice
    after slice: exactly what the network run slice by slice does to this layer. In eval mode
    it is plain batch norm. Parameters and buffers are batch norm's, so state dicts load
    either way.
    """

    groups: int = 1

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected input of 2 or more dimensions (N, C, ...), got {x.dim()}")

    @classmethod
    def convert(cls, module: nn.Module, groups: int) -> nn.Module:
        """``module`` with every ``BatchNorm1d/2d`` replaced by a :class:`SplitBatchNorm` that
        shares its parameters and buffers (like ``nn.SyncBatchNorm.convert_sync_batchnorm``)."""
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            split = sharing(cls, module)
            split.groups = groups
            return split
        if isinstance(module, SplitBatchNorm):
            module.groups = groups
        for name, child in module.named_children():
            setattr(module, name, cls.convert(child, groups))
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = min(self.groups, max(1, x.shape[0] // 2))  # batch norm needs 2 samples a slice
        batch_norm = super().forward
        if not self.training or g == 1:
            return batch_norm(x)
        return torch.cat([batch_norm(s) for s in x.tensor_split(g)])


def sharing(cls: type[nn.modules.batchnorm._BatchNorm], bn: nn.modules.batchnorm._BatchNorm
            ) -> nn.modules.batchnorm._BatchNorm:
    """A ``cls`` batch norm with ``bn``'s settings that shares its parameters and buffers."""
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    new.weight, new.bias = bn.weight, bn.bias
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        setattr(new, name, getattr(bn, name))
    new.training = bn.training
    return new
