"""Evaluation during a run: kNN accuracy, embedding snapshots, collapse diagnostics on a fixed
probe batch, reconstructions (masked image modelling), and the final linear probe.

An evaluation checks ``should_stop`` between embedding batches and raises :class:`Stopped`, so
a stop request is honoured within one batch even while thousands of images are embedded.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.augment import Augmenter
from engine.config import RunConfig
from engine.data import Dataset
from engine.eval.collapse import collapse_alarm, diagnostics
from engine.eval.embed import embed_images, eval_mode
from engine.eval.knn import knn_top1
from engine.eval.linear_probe import linear_probe
from engine.methods import Method
from engine.openmp import numpy_blas_on_one_thread
from engine.train.events import DiagnosticsEvent, EvalEvent, SnapshotEvent

#: test images a reconstructing method (MIM) shows at each evaluation
RECONSTRUCTIONS = 8


class Stopped(Exception):  # noqa: N818 — a request, not an error
    """The run was asked to stop in the middle of an evaluation."""


def classifier_top1(method: Method, h: np.ndarray, labels: np.ndarray) -> float | None:
    """Test accuracy of a classifier method's own linear head (cross-entropy, FixMatch,
    SESEMI: ``method.classifier`` on ``h``) on the query features ``h`` (N, D) with their
    labels (N,); None for a method without one, or without labelled queries."""
    head = getattr(method, "classifier", None)
    keep = labels >= 0
    if not keep.any():
        return None
    if not isinstance(head, torch.nn.Linear):  # another head: the method's own logits(h)
        device = next(method.parameters()).device
        with torch.no_grad(), eval_mode(method):
            out = method.logits(torch.from_numpy(h[keep]).float().to(device))
        if out is None:
            return None
        return float((out.float().argmax(1).cpu().numpy() == labels[keep]).mean())
    w = head.weight.detach().float().cpu().numpy()  # (C, D)
    b = head.bias.detach().float().cpu().numpy() if head.bias is not None else 0.0
    logits = h[keep].astype(np.float32) @ w.T + b  # (N, C)
    return float((logits.argmax(1) == labels[keep]).mean())


@dataclass
class Features:
    """Frozen ``h`` features of the kNN memory bank and queries, with their labels."""

    bank: np.ndarray  # (N_bank, D)
    bank_labels: np.ndarray  # (N_bank,), -1 = unlabelled
    query: np.ndarray  # (N_query, D)
    query_labels: np.ndarray  # (N_query,)

    @property
    def labelled(self) -> bool:
        return bool((self.bank_labels >= 0).any() and (self.query_labels >= 0).any())


@dataclass
class Evaluation:
    """One evaluation's events (``eval``, then ``snapshot`` when there is one) and features."""

    events: list[dict[str, Any]]
    features: Features

    @property
    def result(self) -> dict[str, Any]:
        return self.events[0]


class Evaluator:
    """Fixed evaluation subsets of one run and the measurements made on them.

    ``train_images``: the uint8 train split wherever the trainer keeps it (device or host).
    """

    def __init__(
        self,
        cfg: RunConfig,
        dataset: Dataset,
        train_images: torch.Tensor,
        augment: Augmenter,
        device: torch.device,
        amp_dtype: torch.dtype | None,
    ) -> None:
        self.cfg, self.dataset, self.train_images = cfg, dataset, train_images
        self.augment, self.device, self.amp_dtype = augment, device, amp_dtype
        e, ds = cfg.eval, dataset
        g = torch.Generator().manual_seed(cfg.seed + 1)
        train_perm = torch.randperm(len(ds.train), generator=g)
        test_perm = torch.randperm(len(ds.test), generator=g)
        n_bank = len(ds.train) if e.knn_train_size <= 0 else min(e.knn_train_size, len(ds.train))
        n_query = len(ds.test) if e.knn_test_size <= 0 else min(e.knn_test_size, len(ds.test))
        self.bank_index = train_perm[:n_bank].sort().values
        n_snap = min(max(e.snapshot_size, 0), len(ds.test))
        # Snapshot images are the first of the kNN queries, so one pass serves both.
        self.query_index = test_perm[: max(n_query, n_snap)].sort().values
        self.snapshot_index = self.query_index[
            torch.randperm(len(self.query_index), generator=g)[:n_snap].sort().values
        ]
        self.probe_index = train_perm[: min(e.probe_size, len(ds.train))]
        self._probe_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _amp(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def embed(
        self, method: Method, images: torch.Tensor, should_stop: Callable[[], bool]
    ) -> dict[str, np.ndarray]:
        """``embed_images`` in batches, checking ``should_stop`` before each (raises
        :class:`Stopped`)."""
        size = max(1, self.cfg.eval.batch_size)
        chunks: dict[str, list[np.ndarray]] = {}
        for start in range(0, images.shape[0], size):
            if should_stop():
                raise Stopped
            out = embed_images(method, images[start : start + size], self.augment.normalise,
                               self.device, size, self.amp_dtype)
            for key, value in out.items():
                chunks.setdefault(key, []).append(value)
        return {k: np.concatenate(v) for k, v in chunks.items()}

    def evaluate(
        self, method: Method, step: int, should_stop: Callable[[], bool] = lambda: False
    ) -> Evaluation:
        """kNN top-1 of ``h`` (and ``z``) on the fixed query set, and a map snapshot."""
        ds, e = self.dataset, self.cfg.eval
        t0 = time.perf_counter()
        bank = self.embed(method, self.train_images[self.bank_index.to(self.train_images.device)],
                          should_stop)
        query = self.embed(method, ds.test.images[self.query_index], should_stop)
        features = Features(bank["h"], ds.train.labels[self.bank_index].numpy(),
                            query["h"], ds.test.labels[self.query_index].numpy())
        result: dict[str, Any] = EvalEvent(type="eval", step=step)
        if features.labelled:
            for key in ("h", "z"):
                if key in query:
                    suffix = "" if key == "h" else "_z"
                    result[f"knn_top1{suffix}"] = knn_top1(
                        bank[key], features.bank_labels, query[key], features.query_labels,
                        k=e.knn_k, temperature=e.knn_temperature,
                    )
            top1 = classifier_top1(method, query["h"], features.query_labels)
            if top1 is not None:
                result["classifier_top1"] = top1
        for attr, values in ds.test.attributes.items():
            result[f"knn_{attr}"] = knn_top1(
                bank["h"], ds.train.attributes[attr][self.bank_index].numpy(),
                query["h"], values[self.query_index].numpy(),
                k=e.knn_k, temperature=e.knn_temperature,
            )
        result["eval_seconds"] = time.perf_counter() - t0
        events = [result]
        if len(self.snapshot_index):
            events.append(self._snapshot(method, step, query))
        return Evaluation(events, features)

    def _snapshot(
        self, method: Method, step: int, query: dict[str, np.ndarray]
    ) -> dict[str, Any]:
        ds = self.dataset
        pos = torch.searchsorted(self.query_index, self.snapshot_index).numpy()
        arrays = {k: v[pos] for k, v in query.items()}
        arrays["index"] = self.snapshot_index.numpy()
        arrays["labels"] = ds.test.labels[self.snapshot_index].numpy()
        for attr, values in ds.test.attributes.items():
            arrays[f"attr_{attr}"] = values[self.snapshot_index].numpy()
        pictures = self._reconstructions(method)
        if pictures is not None:
            arrays["reconstructions"] = pictures
        return {**SnapshotEvent(type="snapshot", step=step), "arrays": arrays}

    def _reconstructions(self, method: Method) -> Any:
        """uint8 (3, n, C, H, W) from ``method.reconstruct`` of the first snapshot images,
        the same hidden patches at every evaluation; None for methods that reconstruct
        nothing."""
        images = self.dataset.test.images[self.snapshot_index[:RECONSTRUCTIONS]]
        x = self.augment.normalise(images.to(self.device))
        with eval_mode(method), self._amp():
            out = method.reconstruct(x, torch.Generator(self.device).manual_seed(0))
        if out is None:
            return None
        return self.augment.denormalise(out.float().flatten(0, 1)).view(out.shape).cpu().numpy()

    def _probe_views(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe batch's two augmented views, (P, C, H, W) each: drawn once from a fixed
        seed and kept, so every probe sees the same images and pays no augmentation."""
        if self._probe_cache is None:
            images = self.train_images
            x = images[self.probe_index.to(images.device)].to(self.device)
            g = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 2)
            self._probe_cache = (self.augment.view(x, 0, g), self.augment.view(x, 1, g))
        return self._probe_cache

    @torch.no_grad()
    def probe(self, method: Method, step: int) -> dict[str, Any]:
        """Collapse diagnostics of ``method`` on the fixed probe batch (two fixed views)."""
        x0, x1 = self._probe_views()
        with eval_mode(method), self._amp():
            out0 = method.embed(x0)
            out1 = method.embed(x1)
        key = "z" if "z" in out0 else "h"
        as_np = lambda t: t.float().cpu().numpy()  # noqa: E731
        with numpy_blas_on_one_thread():  # no BLAS thread left spinning beside the next step
            diag = diagnostics(as_np(out0["h"]), as_np(out0[key]), as_np(out1[key]))
        alarm = collapse_alarm(diag, self.cfg.method.name, step=step)
        return {**DiagnosticsEvent(type="diagnostics", step=step, alarm=alarm.__dict__), **diag}

    @staticmethod
    def linear_probe(features: Features) -> float | None:
        """SupCon's second stage, for every method: a linear head on the frozen ``h``
        (bank -> queries); None without labels."""
        if not features.labelled:
            return None
        return linear_probe(features.bank, features.bank_labels, features.query,
                            features.query_labels)
