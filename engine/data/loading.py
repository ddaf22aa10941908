"""Load a registered data set: resize once, subsample, hide labels, and cache the result.

``load_dataset(cfg)`` is the one entry point. The steps, in order:

1. look up the loader in ``DATASETS`` (an unknown name is a ``ValueError`` listing the names);
2. return the decoded arrays from the in-process LRU or the on-disk cache when present;
3. otherwise call the loader, resize every split to ``cfg.image_size`` (square: shorter side to
   the size, then a centre crop; antialiased bilinear, in chunks), subsample train/test to
   ``train_size``/``test_size`` (deterministic from ``cfg.seed``, class-proportional) and write
   the cache atomically;
4. apply ``labels_per_class`` last (cheap), so changing it never re-decodes anything.

On-disk layout under the data directory (``cfg.data_dir``; ``""`` means ``$SSL_STUDIO_DATA``
when set, else ``./data_cache``)::

    <data_dir>/cache/<name>-<size>px-<hash>.pt    decoded, resized, subsampled splits
    <data_dir>/<name>/...                         downloads (torchvision data sets)
    <data_dir>/extracted/<archive name>/...       archives given as a folder root

The hash covers the name, the image size, the subsample sizes, the seed, a format version and,
when ``cfg.root`` is set, a fingerprint of it (a file's size and mtime; a folder's file count,
total size and newest mtime), so editing an image folder invalidates its cache. A cache file
that cannot be read is ignored and rebuilt.

The returned :class:`Dataset` shares its image tensors with the cache: treat them as read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.config import DataConfig
from engine.data.base import DATASETS, DataError, Dataset, Split
from engine.data.roots import check_allowed, max_files

log = logging.getLogger(__name__)

#: bump when the cached form changes, so old cache files are not read
CACHE_VERSION = 1
#: environment variable naming the data directory when ``cfg.data_dir`` is empty
DATA_DIR_ENV = "SSL_STUDIO_DATA"
#: data sets kept decoded in this process (the least recently used is dropped first)
MEMORY_ENTRIES = 3
#: images resized per chunk (bounds the float32 working memory)
RESIZE_CHUNK = 2048

# salts that keep the random streams of the different selections independent
_SALT = {"train": 1, "test": 2, "labels": 3}

_memory: OrderedDict[str, Dataset] = OrderedDict()
_memory_lock = threading.Lock()
_key_locks: dict[str, threading.Lock] = {}


# ---- public helpers --------------------------------------------------------------------------
def data_root(cfg: DataConfig) -> Path:
    """The data directory: ``cfg.data_dir``, else ``$SSL_STUDIO_DATA``, else ``./data_cache``."""
    raw = cfg.data_dir or os.environ.get(DATA_DIR_ENV, "") or "data_cache"
    return Path(raw).expanduser().absolute()


def resize_images(images: torch.Tensor, size: int, chunk: int = RESIZE_CHUNK) -> torch.Tensor:
    """Resize uint8 images to ``size x size``: shorter side to ``size``, then a centre crop.

    images: uint8 (N, C, H, W); returns uint8 (N, C, size, size), contiguous. Antialiased
    bilinear (like torchvision's ``Resize``), processed ``chunk`` images at a time. Images
    already at the size are returned as they are (made contiguous).
    """
    n, c, h, w = images.shape
    if h == size and w == size:
        return images.contiguous()
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = torch.empty((n, c, size, size), dtype=torch.uint8)
    for start in range(0, n, chunk):
        x = images[start : start + chunk].float()
        x = F.interpolate(
            x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
        )
        x = x[:, :, top : top + size, left : left + size]
        out[start : start + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def subsample_index(labels: np.ndarray, size: int, seed: int, split: str) -> np.ndarray:
    """Sorted indices of a deterministic, class-proportional subset of ``size`` items.

    labels: int (N,), ``-1`` counts as its own group. ``size <= 0`` or ``size >= N`` keeps all.
    Each group is shuffled with a generator seeded by ``(seed, split)`` and items are taken
    in order of their relative position within their group, so every class keeps about the
    same share it had. Loaders that subsample before decoding call this with the same
    arguments, which makes the later subsample in :func:`load_dataset` a no-op.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if size <= 0 or size >= n:
        return np.arange(n)
    rng = np.random.default_rng([seed, _SALT[split]])
    order = rng.permutation(n)
    shuffled = labels[order]
    position = np.empty(n, dtype=np.float64)
    for value in np.unique(shuffled):
        members = shuffled == value
        count = int(members.sum())
        position[members] = (np.arange(count) + 0.5) / count
    chosen = order[np.argsort(position, kind="stable")[:size]]
    return np.sort(chosen)


def keep_labels_per_class(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """A copy of ``labels`` (N,) where only ``per_class`` items of each class keep their label.

    The kept items are chosen per class by a generator seeded by ``(seed, class)``; the rest
    become ``-1``. A class with fewer items keeps them all. ``per_class <= 0`` keeps all.
    """
    if per_class <= 0:
        return labels.clone()
    values = labels.numpy()
    out = np.full_like(values, -1)
    for cls in np.unique(values[values >= 0]):
        members = np.flatnonzero(values == cls)
        rng = np.random.default_rng([seed, _SALT["labels"], int(cls)])
        keep = rng.permutation(members)[:per_class]
        out[keep] = cls
    return torch.from_numpy(out)


def clear_memory_cache() -> None:
    """Forget the data sets held in this process (the disk cache stays)."""
    with _memory_lock:
        _memory.clear()


def cache_path(cfg: DataConfig) -> Path:
    """Where the decoded form of ``cfg`` is (or will be) cached on disk."""
    return _cache_file(cfg, data_key(cfg))


# ---- the entry point -------------------------------------------------------------------------
def load_dataset(cfg: DataConfig, *, use_cache: bool = True) -> Dataset:
    """Load the data set ``cfg.name`` in its in-memory form (see module docstring).

    Raises ``ValueError`` for an unknown name and :class:`DataError` when the data cannot be
    read (missing files, failed download, empty folder). ``use_cache=False`` skips both the
    in-process and the on-disk cache (neither read nor written).
    """
    loader = DATASETS.get(cfg.name)
    if not use_cache:
        ds = _prepare(loader(cfg), cfg)
        return _with_labels(ds, cfg)

    key = data_key(cfg)
    with _lock_for(key):
        ds = _memory_get(key)
        if ds is None:
            file = _cache_file(cfg, key)
            ds = _read_cache(file, key)
            if ds is None:
                ds = _prepare(loader(cfg), cfg)
                _write_cache(file, key, ds)
            ds.key = key
            _memory_put(key, ds)
    return _with_labels(ds, cfg)


# ---- steps -----------------------------------------------------------------------------------
def _prepare(ds: Dataset, cfg: DataConfig) -> Dataset:
    """Resize every split and subsample train/test."""
    train = _subsample(ds.train, cfg.train_size, cfg.seed, "train")
    test = _subsample(ds.test, cfg.test_size, cfg.seed, "test")
    return dataclasses.replace(
        ds,
        train=_resize_split(train, cfg.image_size),
        test=_resize_split(test, cfg.image_size),
        unlabelled=None if ds.unlabelled is None else _resize_split(ds.unlabelled, cfg.image_size),
    )


def _subsample(split: Split, size: int, seed: int, name: str) -> Split:
    if size <= 0 or size >= len(split):
        return split
    return split.subset(subsample_index(split.labels.numpy(), size, seed, name))


def _resize_split(split: Split, size: int) -> Split:
    return Split(resize_images(split.images, size), split.labels, dict(split.attributes))


def _with_labels(ds: Dataset, cfg: DataConfig) -> Dataset:
    """A shallow copy (tensors shared) with the train split's label settings applied, in
    order: ``imbalance`` (a long-tailed subset), ``labels_per_class``, ``label_noise``
    (``engine.data.label_noise``). The test split is never changed."""
    from engine.data.label_noise import flip_labels, long_tail_index

    train = ds.train
    if cfg.imbalance > 1:
        train = train.subset(long_tail_index(train.labels, cfg.imbalance, cfg.noise_seed))
    if cfg.labels_per_class > 0:
        labels = keep_labels_per_class(train.labels, cfg.labels_per_class, cfg.seed)
        train = Split(train.images, labels, dict(train.attributes))
    if cfg.label_noise > 0:
        labels = flip_labels(train.labels, cfg.label_noise, len(ds.class_names), cfg.noise_seed)
        train = Split(train.images, labels, dict(train.attributes))
    return dataclasses.replace(ds, train=train, skipped_examples=list(ds.skipped_examples))


# ---- cache keys ------------------------------------------------------------------------------
def _root_fingerprint(root: str) -> dict[str, Any] | None:
    """What identifies the contents of ``root``: enough to notice added/edited/removed files."""
    if not root:
        return None
    path = check_allowed(root)  # LAN mode: refused before anything under it is listed
    try:
        st = path.stat()
    except OSError:
        return {"path": str(path), "missing": True}
    if not path.is_dir():
        return {"path": str(path), "size": st.st_size, "mtime": st.st_mtime_ns}
    files, total, newest, cap = 0, 0, st.st_mtime_ns, max_files()
    for dirpath, dirnames, filenames in os.walk(path):  # links to folders are not followed
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        newest = max(newest, os.stat(dirpath).st_mtime_ns)
        if files + len(filenames) > cap:
            raise DataError(f"{path} holds more than {cap:,} files; reading stopped there. "
                            "Point data.root at a smaller folder (the limit is "
                            "SSL_STUDIO_MAX_FILES)")
        for name in filenames:
            try:
                fst = os.stat(os.path.join(dirpath, name))
            except OSError:
                continue
            files += 1
            total += fst.st_size
            newest = max(newest, fst.st_mtime_ns)
    return {"path": str(path), "files": files, "bytes": total, "mtime": newest}


def data_key(cfg: DataConfig) -> str:
    """The key ``cfg``'s data set is cached under, as its files are now (``Dataset.key``)."""
    key = {
        "version": CACHE_VERSION,
        "name": cfg.name,
        "image_size": cfg.image_size,
        "train_size": cfg.train_size,
        "test_size": cfg.test_size,
        "seed": cfg.seed,
        "root": _root_fingerprint(cfg.root),
    }
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _cache_file(cfg: DataConfig, key: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in cfg.name)
    return data_root(cfg) / "cache" / f"{safe}-{cfg.image_size}px-{key}.pt"


def _lock_for(key: str) -> threading.Lock:
    with _memory_lock:
        return _key_locks.setdefault(key, threading.Lock())


# ---- in-process LRU --------------------------------------------------------------------------
def _memory_get(key: str) -> Dataset | None:
    with _memory_lock:
        ds = _memory.get(key)
        if ds is not None:
            _memory.move_to_end(key)
        return ds


def _memory_put(key: str, ds: Dataset) -> None:
    with _memory_lock:
        _memory[key] = ds
        _memory.move_to_end(key)
        while len(_memory) > MEMORY_ENTRIES:
            _memory.popitem(last=False)


# ---- on-disk cache ---------------------------------------------------------------------------
def _split_state(split: Split) -> dict[str, Any]:
    return {"images": split.images, "labels": split.labels, "attributes": dict(split.attributes)}


def _split_from_state(state: dict[str, Any]) -> Split:
    return Split(state["images"], state["labels"], dict(state["attributes"]))


def _write_cache(file: Path, key: str, ds: Dataset) -> None:
    """Write atomically (temp file in the same folder, then ``os.replace``); never fatal."""
    state = {
        "version": CACHE_VERSION,
        "key": key,
        "name": ds.name,
        "train": _split_state(ds.train),
        "test": _split_state(ds.test),
        "unlabelled": None if ds.unlabelled is None else _split_state(ds.unlabelled),
        "class_names": list(ds.class_names),
        "attribute_names": {k: list(v) for k, v in ds.attribute_names.items()},
        "skipped": int(ds.skipped),
        "skipped_examples": list(ds.skipped_examples),
    }
    tmp = None
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{file.stem}.", suffix=".tmp", dir=file.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, file)
        tmp = None
    except OSError as e:
        log.warning("could not write the data cache %s: %s", file, e)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _read_cache(file: Path, key: str) -> Dataset | None:
    """The cached data set, or ``None`` when absent, stale or unreadable (then rebuilt)."""
    if not file.is_file():
        return None
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
        if state.get("version") != CACHE_VERSION or state.get("key") != key:
            return None
        unlabelled = state["unlabelled"]
        return Dataset(
            name=state["name"],
            train=_split_from_state(state["train"]),
            test=_split_from_state(state["test"]),
            class_names=list(state["class_names"]),
            attribute_names={k: list(v) for k, v in state["attribute_names"].items()},
            unlabelled=None if unlabelled is None else _split_from_state(unlabelled),
            skipped=int(state["skipped"]),
            skipped_examples=list(state["skipped_examples"]),
        )
    except Exception as e:  # noqa: BLE001  (any damage means: rebuild)
        log.warning("ignoring the unreadable data cache %s (%s); rebuilding", file, e)
        return None
