"""Weighted k-nearest-neighbour classification of embeddings: the online accuracy of SSL runs.

Wu et al. 2018, "Unsupervised Feature Learning via Non-Parametric Instance Discrimination"
(https://arxiv.org/abs/1805.01978), in the form lightly and solo-learn use: cosine similarity to
a labelled memory bank, the k most similar vote with weight ``exp(sim / T)``, the class with the
largest summed weight wins.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.eval.retrieval import NeighbourIndex
from engine.eval.vectors import as_labels, as_matrix


def knn_predict(
    train_feats: Any,
    train_labels: Any,
    query_feats: Any,
    k: int = 20,
    temperature: float = 0.1,
    num_classes: int | None = None,
) -> np.ndarray:
    """Predicted label of each query by a temperature-weighted kNN vote.

    Args:
        train_feats: memory bank (N, D); rows with label < 0 are removed from the bank.
        train_labels: (N,) ints, -1 for unlabelled.
        query_feats: (Q, D).
        k: neighbours that vote; clipped to the number of labelled bank rows.
        temperature: T in ``exp(cos / T)``; smaller T lets the closest neighbours dominate.
        num_classes: number of classes C (default: largest bank label + 1).

    Returns:
        int64 (Q,) predicted labels. Exact score ties go to the lower class index.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    bank = as_matrix(train_feats, "train")
    labels = as_labels(train_labels, bank.shape[0], "train labels")
    queries = as_matrix(query_feats, "query")
    keep = labels >= 0
    if not keep.any():
        raise ValueError("the kNN memory bank has no labelled samples (all labels are -1)")
    bank, labels = bank[keep], labels[keep]
    c = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.max() >= c:
        raise ValueError(f"a train label is {labels.max()} but num_classes is {c}")
    sims, idx = NeighbourIndex(bank).search(queries, k)  # (Q, k)
    s = sims.astype(np.float64)
    # exp((s - max) / T): the same vote per row, without overflow at small T
    w = np.exp((s - s[:, :1]) / temperature)  # (Q, k); column 0 holds the row maximum
    scores = np.zeros((queries.shape[0], c))  # (Q, C)
    rows = np.repeat(np.arange(queries.shape[0]), s.shape[1])
    np.add.at(scores, (rows, labels[idx].ravel()), w.ravel())
    return scores.argmax(axis=1).astype(np.int64)


def knn_top1(
    train_feats: Any,
    train_labels: Any,
    test_feats: Any,
    test_labels: Any,
    k: int = 20,
    temperature: float = 0.1,
) -> float:
    """Top-1 accuracy of :func:`knn_predict` over the test samples with label >= 0.

    Args:
        train_feats: (N, D); train_labels: (N,); test_feats: (Q, D); test_labels: (Q,).

    Returns:
        accuracy in [0, 1].
    """
    test = as_matrix(test_feats, "test")
    y = as_labels(test_labels, test.shape[0], "test labels")
    keep = y >= 0
    if not keep.any():
        raise ValueError("no labelled test samples (all test labels are -1)")
    train_y = as_labels(train_labels, len(train_labels), "train labels")
    c = max(int(train_y.max()), int(y.max())) + 1
    pred = knn_predict(train_feats, train_y, test[keep], k, temperature, num_classes=c)
    return float((pred == y[keep]).mean())
