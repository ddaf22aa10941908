"""Loss functions for self-supervised, contrastive and metric learning.

Every loss is a pure function of tensors: no state, no parameters, no memory bank (MoCo's queue is
passed in by its method). Shapes use ``B`` for the batch, ``D`` for the embedding width, ``V`` for
views per sample and ``K`` for queue length.

Numerics shared by all functions:

- Half-precision inputs (bf16, fp16) are cast to float32 and autocast is switched off inside
  each loss, so a loss called in a bf16/fp16 autocast region computes its matmuls, norms and
  log-sum-exps in float32 and returns a float32 scalar. float64 inputs stay float64 (the tests
  compare against references in double precision). Gradients flow back in the inputs' dtype.
- Softmax-type losses go through ``log_softmax``/``cross_entropy`` (log-sum-exp with the maximum
  subtracted), never ``exp`` then ``log``.
- Losses that average over a data-dependent set (anchors with a positive, labelled samples,
  valid pairs) divide by ``max(count, 1)``: when the set is empty they return an exact 0 that is
  still connected to the graph, so ``backward()`` works and gives zero gradients. None of them
  syncs the host with the device to find that out.
- Label ``-1`` means "unlabelled" throughout the engine.
"""

from engine.losses.contrastive import info_nce, info_nce_logits, moco_logits, supcon
from engine.losses.metric import (
    margin_contrastive,
    pairwise_margin_contrastive,
    triplet_batch_all,
    triplet_batch_hard,
)
from engine.losses.non_contrastive import (
    barlow_twins,
    byol_loss,
    negative_cosine,
    vicreg,
    vicreg_terms,
)
from engine.losses.numerics import UNLABELLED
from engine.losses.supervised import cross_entropy

__all__ = [
    "UNLABELLED",
    "barlow_twins",
    "byol_loss",
    "cross_entropy",
    "info_nce",
    "info_nce_logits",
    "margin_contrastive",
    "moco_logits",
    "negative_cosine",
    "pairwise_margin_contrastive",
    "supcon",
    "triplet_batch_all",
    "triplet_batch_hard",
    "vicreg",
    "vicreg_terms",
]
