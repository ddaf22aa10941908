"""The one in-memory form every data set loads to.

Every loader returns a :class:`Dataset`: a train and a test :class:`Split`, each holding
``uint8`` images ``(N, C, H, W)``, ``int64`` labels ``(N,)`` with ``-1`` for unlabelled, and
optional extra attribute labels (colour, size, ...) used to colour the embedding map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.registry import Registry


@dataclass
class Split:
    """One split of a data set.

    images: uint8 tensor (N, C, H, W).
    labels: int64 tensor (N,); -1 marks an unlabelled image.
    attributes: name -> int64 tensor (N,) of extra labels (e.g. ``colour``), indices into
        ``Dataset.attribute_names[name]``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must have shape (N,) matching the images")
        self.labels = self.labels.to(torch.int64)
        for name, values in self.attributes.items():
            if values.shape != self.labels.shape:
                raise ValueError(f"attribute {name!r} must have shape (N,)")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def spread(self, n: int) -> torch.Tensor:
        """Indices (up to ``n``,) of images from every class in turn: the first image of each
        class, then the second of each, ... A look at a data set whose files come sorted by
        class (a folder per class) shows all of its classes, not the first one's images."""
        if not len(self):
            return torch.zeros(0, dtype=torch.int64)
        labels = self.labels - self.labels.min()  # from 0 (-1 marks an unlabelled image)
        order = torch.argsort(labels, stable=True)
        by_class = labels[order]
        rank = torch.arange(len(labels)) - torch.searchsorted(by_class, by_class)  # in its class
        turn = rank * (int(by_class[-1]) + 1) + by_class
        return order[torch.argsort(turn, stable=True)[:n]]

    def subset(self, index: torch.Tensor | np.ndarray) -> Split:
        """The images at ``index`` (a new Split sharing nothing with this one)."""
        index = torch.as_tensor(index, dtype=torch.int64)
        return Split(
            images=self.images[index].clone(),
            labels=self.labels[index].clone(),
            attributes={k: v[index].clone() for k, v in self.attributes.items()},
        )


@dataclass
class Dataset:
    """A named data set: train and test splits, class names and attribute names.

    ``unlabelled`` is an optional extra pool of images without labels (STL-10's unlabelled
    split); self-supervised methods may train on it as well.
    ``skipped`` counts files a loader could not read (corrupt or not images). A run records
    ``key`` (in its ``start`` event), so pictures of its snapshots are not drawn from a folder
    that changed since.
    """

    name: str
    train: Split
    test: Split
    class_names: list[str]
    attribute_names: dict[str, list[str]] = field(default_factory=dict)
    unlabelled: Split | None = None
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    #: what it was loaded from: the cache key of its settings and, for a folder, the folder's
    #: fingerprint (file count, bytes, newest time); "" when loaded without the cache
    key: str = ""

    def share_memory(self) -> Dataset:
        """Move every tensor into shared memory, in place (once; a no-op after); returns self.

        A tensor sent to another process (a run's training process) is moved there at the send
        otherwise, and its memory is swapped under any thread reading it at that moment: the
        server's pages draw from the same cached data set, and that use after free crashed the
        server (a segfault in a uint8 copy, right as a run started). A server shares its data
        sets when it loads them, before any page reads them.
        """
        for split in (self.train, self.test, self.unlabelled):
            if split is not None:
                for tensor in (split.images, split.labels, *split.attributes.values()):
                    tensor.share_memory_()
        return self

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def colourings(self) -> list[str]:
        """Names a map can be coloured by: ``class`` first, then each attribute."""
        return ["class", *self.attribute_names]

    def describe(self) -> dict:
        """A short JSON-able summary: sizes, classes and per-class counts of the train split."""
        labels = self.train.labels
        counts = {
            name: int((labels == i).sum()) for i, name in enumerate(self.class_names)
        }
        return {
            "name": self.name,
            "train": len(self.train),
            "test": len(self.test),
            "unlabelled": len(self.unlabelled) if self.unlabelled is not None else 0,
            "channels": self.channels,
            "image_size": self.image_size,
            "classes": self.class_names,
            "class_counts": counts,
            "attributes": list(self.attribute_names),
            "skipped": self.skipped,
            "key": self.key,
        }


class DataError(ValueError):
    """A data set could not be loaded; the message says why and what to do."""


#: name -> loader ``fn(cfg: DataConfig) -> Dataset``. A loader may return images at any size;
#: :func:`engine.data.load_dataset` resizes to ``cfg.image_size`` and caches the result.
DATASETS: Registry[Callable[..., Dataset]] = Registry("data set")
