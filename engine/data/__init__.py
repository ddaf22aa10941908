"""Data sets: a registry of loaders that all return the in-memory form of ``base.Dataset``.

``load_dataset(cfg)`` is the entry point (resize, subsample, labelled subset, disk cache: see
``engine.data.loading``). Importing this package registers every built-in loader.
"""

from engine.data.base import DATASETS, DataError, Dataset, Split
from engine.data.loading import clear_memory_cache, data_root, load_dataset

# imported for their @DATASETS.register side effect
from engine.data import digits, folder, shapes, torchvision_sets  # noqa: E402, F401  # isort: skip

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "Split",
    "clear_memory_cache",
    "data_root",
    "load_dataset",
]
