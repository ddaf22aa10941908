"""Gradient accumulation: one optimiser step over a batch too large for one forward pass.

The batch (``train.batch_size``, the effective batch) is split into ``k`` micro-batches
(``train.accumulate``); each is forwarded and back-propagated in turn, its loss weighted by
its share of the batch, so the gradients add up to those of the mean loss over the batch.
The BYOL tutorial reaches an effective batch of 2048 from 128 this way.

That is exact only for a loss that is a mean over independent images (cross-entropy,
rotation prediction: ``Method.exact_accumulation``). It is an approximation for

- in-batch contrastive losses (SimCLR, SupCon, MoCo's in-batch part, triplet mining): an image
  meets as negatives (and SupCon's positives) only the images of its own micro-batch;
- statistics over the batch (Barlow Twins' and VICReg's covariance, batch-centred targets);
- BatchNorm in training mode, in every method: each micro-batch is normalised by its own
  mean and variance (and the running statistics are updated ``k`` times).

The first two change what the loss is; the last changes the forward pass slightly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from engine.methods import Batch, StepOutput


def accumulated_step(
    step: Callable[[Batch], StepOutput],
    batch: Batch,
    k: int,
    amp: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> StepOutput:
    """Forward and backward of ``batch`` (x: (B, C, H, W), y: (B,)) in ``k`` micro-batches of
    sizes differing by at most one, each through ``step`` (a method's ``training_step``, or
    its data-parallel wrapper); gradients accumulate in ``.grad`` (the caller zeroes them
    before and steps the optimiser after).

    Each micro-batch's loss is weighted by ``len(micro) / B``. Returns the weighted mean loss
    and logs, detached (the backward passes are done). ``amp``: the autocast context of the
    forward passes.
    """
    total = torch.zeros((), device=batch.x.device)
    logs: dict[str, torch.Tensor] = {}
    size = len(batch.x)
    for x, y in zip(batch.x.tensor_split(k), batch.y.tensor_split(k), strict=True):
        if not len(x):
            continue
        weight = len(x) / size
        with amp():
            out = step(Batch(x, y, batch.augment, batch.generator))
        (out.loss * weight).backward()
        total += out.loss.detach().float() * weight
        for key, value in out.logs.items():
            value = torch.as_tensor(value).detach().float() * weight
            logs[key] = logs.get(key, 0) + value
    return StepOutput(total, logs)
