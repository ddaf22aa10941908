"""The invariance profile of a run: what each augmentation op does to its representation.

For every op of the op library (``engine.augment.OPS``), applied alone (``p = 1``) to test
images at the strength the run trained with (the op's default when the run did not use it) and
at a weaker and a stronger setting (``engine.augment.strength``):

- ``cosine``: mean cosine similarity in ``h`` between an image and its augmented copy
  (1 = the encoder ignores the op);
- ``knn``: weighted kNN top-1 (Wu et al. 2018, https://arxiv.org/abs/1805.01978) of the
  augmented test images against a bank of clean train images (compare with ``clean_knn``).

The idea of measuring learned invariances op by op follows Ericsson et al. 2021, "Why Do
Self-Supervised Models Transfer? Investigating the Impact of Invariance on Downstream Tasks"
(https://arxiv.org/abs/2111.11398). A profile is cached beside the run, per checkpoint step
(``studio/profile_step_<step>.json``): a checkpoint's weights never change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.augment.ops import OPS, validate_view
from engine.augment.strength import LEVELS, has_strength, scaled
from engine.eval.encoder import RunEncoder
from engine.eval.knn import knn_top1

Op = dict[str, Any]


def run_strength(views: Sequence[Sequence[Op]], name: str) -> Op | None:
    """The op ``name`` as the run's views use it (the first view that applies it, p > 0), or
    None when no view does."""
    for view in views:
        for op in view:
            if op["op"] == name and op["p"] > 0:
                return dict(op)
    return None


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean row-wise cosine similarity of (N, D) arrays."""
    na = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    nb = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float((na * nb).sum(1).mean())


def invariance(
    encoder: RunEncoder,
    images: torch.Tensor,
    ops: Sequence[Op],
    clean_h: np.ndarray,
    seed: int = 0,
    labels: np.ndarray | None = None,
    bank_h: np.ndarray | None = None,
    bank_labels: np.ndarray | None = None,
) -> tuple[float, float | None]:
    """(mean cosine of ``images`` to their augmented copies in ``h``, kNN top-1 of the copies
    against the bank or None without labels). images: uint8 (N, C, H, W); ops: one view's op
    list; clean_h: (N, D), the images' own ``h``."""
    aug = encoder.augmenter([validate_view(list(ops))])
    g = torch.Generator(device=encoder.device).manual_seed(seed)  # views made on the device
    h = encoder.embed_normalised(lambda x: aug.view(x, 0, g), images)
    knn = None
    if labels is not None and bank_h is not None and bank_labels is not None:
        if (labels >= 0).any() and (bank_labels >= 0).any():
            knn = knn_top1(bank_h, bank_labels, h, labels)
    return mean_cosine(h, clean_h), knn


def _split(encoder: RunEncoder, n_bank: int, n_query: int, seed: int) -> dict[str, Any]:
    ds = encoder.dataset
    g = torch.Generator().manual_seed(seed)
    bank = torch.randperm(len(ds.train), generator=g)[:n_bank].sort().values
    query = torch.randperm(len(ds.test), generator=g)[:n_query].sort().values
    return {"bank": ds.train.images[bank], "bank_labels": ds.train.labels[bank].numpy(),
            "query": ds.test.images[query], "labels": ds.test.labels[query].numpy()}


def invariance_profile(
    encoder: RunEncoder,
    n_bank: int = 1000,
    n_query: int = 500,
    ops: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """The profile as a JSON-ready dict: ``step``, ``clean_knn``, ``n_bank``, ``n_query``,
    ``seconds`` and ``rows``, one per op and level: ``op``, ``level`` (weaker | run |
    stronger; ops without a strength: run only), ``factor``, ``in_run`` (the run used the op),
    ``params`` (the op as measured, ``p`` = 1), ``cosine``, ``knn`` (None without labels).

    ops: op names (default: every op of the library); progress: called with the done fraction.
    """
    names = list(OPS) if ops is None else list(ops)
    unknown = sorted(set(names) - set(OPS))
    if unknown:
        raise ValueError(f"unknown op(s) {', '.join(unknown)}; known: {', '.join(sorted(OPS))}")
    start = time.monotonic()
    data = _split(encoder, n_bank, n_query, seed)
    bank_h = encoder.embed(data["bank"])
    clean_h = encoder.embed(data["query"])
    labelled = bool((data["labels"] >= 0).any() and (data["bank_labels"] >= 0).any())
    clean_knn = knn_top1(bank_h, data["bank_labels"], clean_h, data["labels"]) if labelled \
        else None
    jobs = []
    for name in names:
        used = run_strength(encoder.views, name)
        base = {**(used or {"op": name}), "p": 1.0}
        levels = LEVELS if has_strength(name) else {"run": 1.0}
        for level, factor in levels.items():
            jobs.append((name, level, factor, used is not None, scaled(base, factor)))
    rows = []
    for i, (name, level, factor, in_run, op) in enumerate(jobs):
        cos, knn = invariance(encoder, data["query"], [op], clean_h, seed + i, data["labels"],
                              bank_h, data["bank_labels"])
        rows.append({"op": name, "level": level, "factor": factor, "in_run": in_run,
                     "params": {k: list(v) if isinstance(v, tuple) else v
                                for k, v in op.items()},
                     "cosine": cos, "knn": knn})
        if progress is not None:
            progress((i + 1) / len(jobs))
    return {"step": encoder.step, "clean_knn": clean_knn, "n_bank": int(len(bank_h)),
            "n_query": int(len(clean_h)), "seconds": time.monotonic() - start, "rows": rows}


def profile_path(run_path: Path, step: int) -> Path:
    """Where the profile of a run's checkpoint at ``step`` is cached."""
    return Path(run_path) / "studio" / f"profile_step_{int(step):07d}.json"


def save_profile(run_path: Path, profile: dict[str, Any]) -> Path:
    """Write ``profile`` beside the run (atomically); returns the file."""
    from engine.train.store import atomic_write_json

    path = profile_path(run_path, profile["step"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, profile)
    return path


def load_profile(run_path: Path, step: int) -> dict[str, Any] | None:
    """The cached profile of the checkpoint at ``step``, or None."""
    try:
        return json.loads(profile_path(run_path, step).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
