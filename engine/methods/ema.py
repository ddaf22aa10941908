"""Exponential moving averages of networks: MoCo's key encoder and BYOL's target.

A target network is a frozen copy of an online network whose parameters trail the online ones:
``target = m * target + (1 - m) * online`` after every optimiser step. It takes no gradient
(its parameters have ``requires_grad=False``, so they are in no optimiser group) and is a
submodule of the method, so it follows ``.to(device)`` and is saved in checkpoints.

He et al. 2019 (MoCo), https://arxiv.org/abs/1911.05722, section 3.2;
Grill et al. 2020 (BYOL), https://arxiv.org/abs/2006.07733, section 3.1.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters take no gradient."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target <- momentum * target + (1 - momentum) * online``, parameter by parameter.

    momentum 0 copies the online weights; momentum 1 freezes the target. Buffers (batch-norm
    running statistics) are the target's own: it runs in training mode, as in MoCo and BYOL.
    """
    t_params = list(target.parameters())
    o_params = [p.detach() for p in online.parameters()]
    if len(t_params) != len(o_params):
        raise ValueError("target and online networks differ in structure")
    if momentum == 0.0:
        torch._foreach_copy_(t_params, o_params)
    else:
        torch._foreach_lerp_(t_params, o_params, 1.0 - momentum)


def cosine_momentum(base: float, progress: float) -> float:
    """BYOL's schedule: ``1 - (1 - base) * (cos(pi * progress) + 1) / 2``.

    Starts at ``base`` (progress 0) and rises to 1 at the end of training (progress 1).
    """
    progress = min(max(progress, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
