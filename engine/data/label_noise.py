"""Label noise and long-tailed class counts: the training sets of the SupCon-vs-cross-entropy
comparison (Khosla et al. 2020, https://arxiv.org/abs/2004.11362, claim SupCon is more robust
to wrong labels; the article it is taught from oversamples a long-tailed set).

Both apply to the train split only, after it is loaded and cached (``engine.data.loading``):
the test split keeps every image and its true label, so accuracy is always measured clean.
"""

from __future__ import annotations

import numpy as np
import torch

# salts that keep the two random streams apart from the loader's own
_NOISE, _TAIL = 11, 12


def flip_labels(labels: torch.Tensor, fraction: float, num_classes: int,
                seed: int) -> torch.Tensor:
    """A copy of ``labels`` (N,) with exactly ``round(fraction * n)`` of its ``n`` labelled
    items (label >= 0) given another class, uniformly among the other ``num_classes - 1``.

    Which items, and their new classes, are drawn from a generator seeded by ``seed``;
    unlabelled items (-1) are never touched. ``fraction`` in [0, 1).
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"data.label_noise must be in [0, 1), got {fraction}")
    out = labels.clone()
    if fraction == 0:
        return out
    if num_classes < 2:
        raise ValueError("data.label_noise needs at least 2 classes to flip a label to another")
    labelled = np.flatnonzero(labels.numpy() >= 0)
    n_flip = int(round(fraction * len(labelled)))
    rng = np.random.default_rng([seed, _NOISE])
    chosen = rng.choice(labelled, size=n_flip, replace=False)
    shift = rng.integers(1, num_classes, size=n_flip)  # never 0: always another class
    out[torch.from_numpy(chosen)] = (labels[torch.from_numpy(chosen)]
                                     + torch.from_numpy(shift)) % num_classes
    return out


def long_tail_index(labels: torch.Tensor, ratio: float, seed: int) -> torch.Tensor:
    """Sorted indices of a long-tailed subset of a labelled split (``labels`` (N,)).

    Class ``i`` of ``C`` (in label order) keeps ``floor(n * ratio ** (-i / (C - 1)))`` items,
    ``n`` the smallest class's count: the first class ``ratio`` times the last, counts
    falling geometrically between (the profile of CIFAR-10-LT, Cao et al. 2019,
    https://arxiv.org/abs/1906.07413). At least one item per class; unlabelled items are
    all kept. ``ratio == 1`` keeps everything.
    """
    values = labels.numpy()
    if ratio <= 1:
        return torch.arange(len(values))
    classes = np.unique(values[values >= 0])
    if len(classes) < 2:
        return torch.arange(len(values))
    n = min(int((values == c).sum()) for c in classes)
    rng = np.random.default_rng([seed, _TAIL])
    keep = [np.flatnonzero(values < 0)]
    for i, c in enumerate(classes):
        count = max(1, int(n * ratio ** (-i / (len(classes) - 1))))
        keep.append(rng.permutation(np.flatnonzero(values == c))[:count])
    return torch.from_numpy(np.sort(np.concatenate(keep))).long()
