"""The optimiser of a run: AdamW (the default) or SGD with momentum, over the method's
parameter groups, without weight decay on biases and normalisation weights.

Biases and batch-norm parameters are left out of weight decay as in BYOL's recipe (Grill et
al. 2020, https://arxiv.org/abs/2006.07733, appendix C). On CUDA the fused kernels run the
update in one launch.
"""

from __future__ import annotations

import torch

from engine.config import TrainConfig
from engine.methods import Method


def build_optimizer(method: Method, t: TrainConfig, lr: float,
                    device: torch.device) -> torch.optim.Optimizer:
    """The optimiser ``t.optimizer`` at learning rate ``lr`` over ``method.param_groups()``,
    each group split into weights (``t.weight_decay``) and biases and norm weights (none)."""
    groups = []
    for group in method.param_groups():
        params = group["params"]
        extra = {k: v for k, v in group.items() if k != "params"}
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        for ps, wd in ((decay, t.weight_decay), (no_decay, 0.0)):
            if ps:
                groups.append({"params": ps, "weight_decay": wd, **extra})
    fused = {"fused": True} if device.type == "cuda" else {}
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=t.momentum, **fused)
    return torch.optim.AdamW(groups, lr=lr, **fused)
