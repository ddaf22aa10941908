"""scikit-learn's ``digits``: 1,797 handwritten digits, 8x8 grayscale, bundled (offline).

Pixel values 0..16 are scaled to uint8 0..255. The train/test split is a fixed, stratified
80/20 split (the same for every run, independent of ``cfg.seed``).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.config import DataConfig
from engine.data.base import DATASETS, Dataset, Split

#: fraction of each class held out as the test split
TEST_FRACTION = 0.2
#: seed of the fixed split (not ``cfg.seed``: every run sees the same test images)
SPLIT_SEED = 0


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices with ``test_fraction`` of every class in the test part."""
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test.append(members[: round(len(members) * test_fraction)])
    test_index = np.sort(np.concatenate(test)) if test else np.zeros(0, dtype=np.int64)
    train_index = np.setdiff1d(np.arange(len(labels)), test_index)
    return train_index, test_index


@DATASETS.register("digits")
def load_digits(cfg: DataConfig) -> Dataset:
    """The 8x8 digits as a :class:`Dataset` (1 channel; resized later by ``load_dataset``)."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)  # (N, 8, 8)
    images = torch.from_numpy(pixels).unsqueeze(1)  # (N, 1, 8, 8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_index, test_index = stratified_split(bunch.target, TEST_FRACTION, SPLIT_SEED)
    everything = Split(images, labels)
    return Dataset(
        name="digits",
        train=everything.subset(train_index),
        test=everything.subset(test_index),
        class_names=[str(int(name)) for name in bunch.target_names],
    )
