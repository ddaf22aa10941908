"""What a tracked run's logged tensors become on disk: the engine's own events and snapshots.

Pure functions over numpy arrays, run on the tracker's writer thread; the measurements are the
engine's (``engine.eval``), so a tracked run is judged exactly like a run the engine trains:

- :func:`snapshot_arrays`: the arrays of ``snapshots/step_*.npz`` that Explore and Compare
  draw (``h``, ``z``, ``index``, ``labels``, ``attr_<name>``), plus what the app would
  otherwise take from the data set: ``images`` (uint8 thumbnails), ``class_names`` and
  ``attribute_names_<name>``;
- :func:`knn_event`: kNN top-1 of the logged embeddings, the odd rows classified against the
  even rows (a tracked run has no separate train and test split);
- :func:`diagnostics_event`: collapse diagnostics and the alarm, from two views or one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.eval.collapse import collapse_alarm, diagnostics
from engine.eval.knn import knn_top1
from engine.eval.linear_probe import linear_probe
from engine.train.events import DiagnosticsEvent, EvalEvent

#: the pair statistics a single view cannot give (they need two views of each image)
PAIR_KEYS = ("alignment", "pos_cos_mean", "pos_hist")


def snapshot_arrays(
    h: np.ndarray,
    z: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    attributes: dict[str, np.ndarray] | None = None,
    images: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    attribute_names: dict[str, Sequence[str]] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of one snapshot file.

    Args:
        h: (N, D) backbone features; z: (N, d) projections or None.
        labels: (N,) ints, -1 = unlabelled (None: all unlabelled).
        attributes: name -> (N,) ints (extra labels to colour the map by).
        images: uint8 (N, C, H, W) or (N, H, W, C) thumbnails, or None.
        ids: (N,) ints naming the images (rows of two runs with the same ids are the same
            image on Compare); None: 0..N-1.
        class_names, attribute_names: the words for the codes (None: the codes as text).
    """
    h = _matrix(h, "h")
    n = h.shape[0]
    out: dict[str, np.ndarray] = {"h": h}
    if z is not None:
        out["z"] = _rows(_matrix(z, "z"), n, "z")
    out["index"] = _rows(_ints(ids, n) if ids is not None else np.arange(n), n, "ids")
    out["labels"] = _rows(_ints(labels, n) if labels is not None else np.full(n, -1), n,
                          "labels")
    for name, values in (attributes or {}).items():
        out[f"attr_{name}"] = _rows(_ints(values, n), n, f"attribute {name!r}")
    if images is not None:
        out["images"] = _rows(_thumbnails(images), n, "images")
    if class_names is not None:
        out["class_names"] = np.asarray([str(c) for c in class_names], dtype=str)
    for name, words in (attribute_names or {}).items():
        out[f"attribute_names_{name}"] = np.asarray([str(w) for w in words], dtype=str)
    return out


def knn_event(step: int, arrays: dict[str, np.ndarray], k: int = 20,
              temperature: float = 0.1) -> dict[str, Any] | None:
    """``eval`` event of a snapshot: ``knn_top1`` (of h), ``knn_top1_z`` and ``knn_<attr>``,
    each the odd rows classified by the even rows; None without two labelled rows a side."""
    t0 = time.perf_counter()
    n = len(arrays["h"])
    bank, query = np.arange(0, n, 2), np.arange(1, n, 2)
    event: dict[str, Any] = EvalEvent(type="eval", step=int(step))
    targets = {"": arrays["labels"]}
    targets.update({f"_{k[5:]}": v for k, v in arrays.items() if k.startswith("attr_")})
    for suffix, codes in targets.items():
        if (codes[bank] >= 0).sum() < 2 or (codes[query] >= 0).sum() < 1:
            continue
        features = ("h", "z") if suffix == "" else ("h",)
        for key in features:
            if key not in arrays:
                continue
            name = ("knn_top1" + ("" if key == "h" else "_z")) if suffix == "" else f"knn{suffix}"
            event[name] = knn_top1(arrays[key][bank], codes[bank], arrays[key][query],
                                   codes[query], k=k, temperature=temperature)
    if len(event) == 2:
        return None
    event["eval_seconds"] = time.perf_counter() - t0
    return event


def linear_top1(arrays: dict[str, np.ndarray]) -> float | None:
    """Linear probe on frozen ``h``: trained on the even rows, scored on the odd ones (None
    without labels)."""
    labels = arrays["labels"]
    bank, query = labels[0::2], labels[1::2]
    if (bank >= 0).sum() < 2 or (query >= 0).sum() < 1:
        return None
    return linear_probe(arrays["h"][0::2], bank, arrays["h"][1::2], query)


def diagnostics_event(step: int, method: str | None, z0: np.ndarray, z1: np.ndarray | None = None,
                      h: np.ndarray | None = None) -> dict[str, Any]:
    """``diagnostics`` event (``engine.eval.collapse.diagnostics`` and ``collapse_alarm``).

    Args:
        z0, z1: (N, d) two views of the same N >= 2 images, row for row. With ``z1`` None
            (one view), the spread, the ranks and the negative pairs are measured and the
            positive-pair statistics (alignment, positive cosines) are left out.
        h: (N, D) backbone features of the first view, or None.
    """
    z0 = _matrix(z0, "z0")
    single = z1 is None
    z1 = z0 if single else _rows(_matrix(z1, "z1"), len(z0), "z1")
    if h is not None:
        h = _rows(_matrix(h, "h"), len(z0), "h")
    diag = diagnostics(h, z0, z1)
    if single:
        diag.update(dict.fromkeys(PAIR_KEYS))
    alarm = collapse_alarm(diag, method, step=step)
    return {**DiagnosticsEvent(type="diagnostics", step=int(step), alarm=alarm.__dict__),
            **diag, "views": 1 if single else 2}


def _matrix(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] < 1:
        raise ValueError(f"{name} must be a (N, D) matrix, got shape {a.shape}")
    return a


def _ints(x: Any, n: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"labels, ids and attributes are (N,) vectors, got shape {a.shape}")
    return a.astype(np.int64)


def _rows(a: np.ndarray, n: int, name: str) -> np.ndarray:
    if len(a) != n:
        raise ValueError(f"{name} has {len(a)} rows but h has {n}")
    return a


def _thumbnails(images: Any) -> np.ndarray:
    """uint8 (N, C, H, W) with C = 1 or 3, from (N, C, H, W) or (N, H, W, C)."""
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W) thumbnails, got {a.dtype} "
                         f"{a.shape}")
    if a.shape[1] not in (1, 3) and a.shape[3] in (1, 3):
        a = np.ascontiguousarray(a.transpose(0, 3, 1, 2))
    if a.shape[1] not in (1, 3):
        raise ValueError(f"images need 1 or 3 channels, got shape {a.shape}")
    return a
