"""The pictures and words a run carries for its map, so Explore and Compare show it where its
data set is not: a tracked run's snapshots hold them (``images``, ``class_names``,
``attribute_names_<name>``, see ``engine.track.measure``); an imported run has one
``thumbnails.npz`` beside its snapshots (``index``, ``images``, the same names), written when
the run was exported.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from engine.train.store import RunDir, atomic_write_bytes

#: the file an exported run keeps its snapshot images in
THUMBNAILS = "thumbnails.npz"

Pictures = tuple[Any, list[str], dict[str, list[str]]]


def carried_pictures(run: RunDir, arrays: dict[str, np.ndarray]) -> Pictures | None:
    """``(thumbs, class_names, attribute_names)`` for a snapshot's rows from what the run
    carries: thumbs uint8 (N, C, H, W) or None. None when the run carries nothing (its data
    set gives them)."""
    if "images" in arrays or "class_names" in arrays or (run.path / "tracked.json").exists():
        return arrays.get("images"), *_words(arrays, arrays)
    path = run.path / THUMBNAILS
    if not path.exists():
        return None
    with np.load(path) as f:
        carried = {k: f[k] for k in f.files}
    where = {int(i): row for row, i in enumerate(carried["index"])}
    rows = [where.get(int(i)) for i in arrays["index"]]
    thumbs = None
    if "images" in carried and all(r is not None for r in rows):
        thumbs = carried["images"][rows]
    return thumbs, *_words(carried, arrays)


def _words(named: dict[str, np.ndarray], arrays: dict[str, np.ndarray]
           ) -> tuple[list[str], dict[str, list[str]]]:
    """Class and attribute names from ``named``, else the codes in ``arrays`` as text."""
    if "class_names" in named:
        classes = [str(c) for c in named["class_names"]]
    else:
        classes = _codes(arrays["labels"])
    attributes = {}
    for key, values in arrays.items():
        if key.startswith("attr_"):
            name = key[5:]
            words = named.get(f"attribute_names_{name}")
            attributes[name] = ([str(w) for w in words] if words is not None
                                else _codes(values))
    return classes, attributes


def _codes(values: np.ndarray) -> list[str]:
    top = int(values.max()) + 1 if len(values) else 0
    return [str(i) for i in range(max(top, 0))]


def write_thumbnails(path: Path, index: np.ndarray, images: np.ndarray,
                     class_names: list[str], attribute_names: dict[str, list[str]]) -> None:
    """Write ``thumbnails.npz``: images uint8 (N, C, H, W) of the test images ``index`` (N,),
    and the words for the run's codes."""
    arrays = {"index": np.asarray(index, dtype=np.int64), "images": np.asarray(images),
              "class_names": np.asarray(class_names, dtype=str)}
    for name, words in attribute_names.items():
        arrays[f"attribute_names_{name}"] = np.asarray(words, dtype=str)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
