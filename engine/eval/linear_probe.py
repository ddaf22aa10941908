"""Linear probe: a softmax classifier trained on frozen features, scored on a test split.

The standard read-out of a representation (SimCLR, https://arxiv.org/abs/2002.05709, section
4; the second stage of SupCon, https://arxiv.org/abs/2004.11362). Features are standardised
with the train split's statistics, so one learning rate suits every method's feature scale.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def linear_probe(
    train_feats: np.ndarray | torch.Tensor,
    train_labels: np.ndarray | torch.Tensor,
    test_feats: np.ndarray | torch.Tensor,
    test_labels: np.ndarray | torch.Tensor,
    epochs: int = 100,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    batch_size: int = 1024,
    seed: int = 0,
) -> float:
    """Top-1 test accuracy of a linear classifier trained on frozen features.

    Args:
        train_feats: (N, D) features of the labelled train images.
        train_labels: (N,) integer labels; -1 (unlabelled) rows are ignored.
        test_feats: (M, D) features of the test images.
        test_labels: (M,) integer labels; -1 rows are not scored.
        epochs: passes over the train features (AdamW, cosine-decayed learning rate).
        lr: AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        batch_size: rows per step.
        seed: for the initialisation and the batch order.

    Returns:
        Accuracy in [0, 1] (0.0 when there is nothing labelled to train on or to score).
    """
    xs = torch.as_tensor(np.asarray(train_feats), dtype=torch.float32)
    ys = torch.as_tensor(np.asarray(train_labels), dtype=torch.int64)
    xt = torch.as_tensor(np.asarray(test_feats), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(test_labels), dtype=torch.int64)
    if xs.ndim != 2 or xt.ndim != 2 or xs.shape[1] != xt.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D); got {tuple(xs.shape)}, "
                         f"{tuple(xt.shape)}")
    keep = ys >= 0
    xs, ys = xs[keep], ys[keep]
    scored = yt >= 0
    if len(ys) == 0 or not scored.any():
        return 0.0
    mean, std = xs.mean(0), xs.std(0, unbiased=False).clamp_min(1e-6)
    xs, xt = (xs - mean) / std, (xt - mean) / std
    classes = int(max(ys.max(), yt.max())) + 1

    g = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(xs.shape[1], classes)
    with torch.no_grad():
        head.weight.normal_(0, 0.01, generator=g)
        head.bias.zero_()
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, -(-len(ys) // batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    for _ in range(epochs):
        perm = torch.randperm(len(ys), generator=g)
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(head(xs[idx]), ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        pred = head(xt[scored]).argmax(1)
    return float((pred == yt[scored]).float().mean())
