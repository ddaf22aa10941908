"""Data sets: a registry of loaders that all return the in-memory form of ``base.Dataset``."""

from engine.data.base import DATASETS, DataError, Dataset, Split

__all__ = ["DATASETS", "DataError", "Dataset", "Split", "load_dataset"]


def load_dataset(cfg):  # noqa: ANN001, ANN201  (completed in engine/data/loading.py)
    from engine.data.loading import load_dataset as _load

    return _load(cfg)
