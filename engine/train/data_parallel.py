"""A method trained by several processes: DistributedDataParallel around its training step.

DDP (Li et al. 2020, https://arxiv.org/abs/2006.15704) averages the gradients of the processes
during the backward pass. It hooks into ``forward``, while a method's entry point is
``training_step(batch)``: :class:`_Step` is the module whose forward is that step. Parameters
are the method's own, so checkpoints, evaluation and EMA updates keep using the method itself
(state dicts without DDP's ``module.`` prefix resume on any number of processes).

Batch norm: with ``train.sync_batchnorm`` (auto: the methods whose papers use it, those with
``Method.sync_batchnorm``) every ``BatchNorm1d/2d`` becomes a
:class:`~engine.models.sync_batchnorm.SyncBatchNorm`; otherwise each process normalises its
own share, as each GPU does in MoCo and SimCLR's reference code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from engine.config import RunConfig
from engine.methods import Batch, Method, StepOutput
from engine.models.sync_batchnorm import SyncBatchNorm


class _Step(nn.Module):
    """``forward(batch) = method.training_step(batch)``, as a tuple DDP can look into."""

    def __init__(self, method: Method) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        out = self.method.training_step(batch)
        return out.loss, out.logs


def uses_sync_batchnorm(method: Method, cfg: RunConfig) -> bool:
    """Whether ``train.sync_batchnorm`` (on | off | auto) asks for global batch statistics."""
    mode = getattr(cfg.train, "sync_batchnorm", "auto")
    return mode == "on" or mode == "auto" and type(method).sync_batchnorm


def wrap(method: Method, cfg: RunConfig) -> Callable[[Batch], StepOutput]:
    """The training step of ``method`` run by DDP (after converting its batch norms when
    :func:`uses_sync_batchnorm`); call it in place of ``method.training_step``."""
    if uses_sync_batchnorm(method, cfg):
        SyncBatchNorm.convert(method)
    if not any(p.requires_grad for p in method.parameters()):
        return method.training_step
    # No buffer broadcast: the buffers that shape training (MoCo's queue, BYOL's momentum) are
    # updated identically everywhere; running statistics only serve rank 0's evaluation.
    params = inspect.signature(DistributedDataParallel).parameters
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in params
               else {"broadcast_buffers": False})  # the older name (torch < 2.14)
    ddp = DistributedDataParallel(_Step(method), **no_sync)

    def step(batch: Batch) -> StepOutput:
        loss, logs = ddp(batch)
        return StepOutput(loss, logs)

    return step
