"""A tracked run: your own training loop, written to a run directory the app shows like its own.

    run = track.start("byol-flat-loss", config={"lr": 3e-4}, runs_dir="runs")
    for step, batch in enumerate(loader):
        ...
        run.log(step, loss=loss, lr=opt.param_groups[0]["lr"])
        if step % 100 == 0:
            run.views(step, z0, z1)                       # two views of the same images
            run.embeddings(step, h=h_test, z=z_test, labels=y_test, images=thumbs)
    run.finish()

Every call copies its tensors (detached, to the CPU) and queues them for the background
:class:`engine.track.writer.Writer`; it never waits for a file or a measurement. The run
directory is the engine's (``engine.train.store.RunDir``): ``config.json`` (a ``RunConfig``
naming your method and data, your own config in ``tracked.json``), ``metrics.jsonl``,
``summary.json`` with this process as the owner and a heartbeat every 2 s (a run whose process
died reads ``interrupted``), and ``snapshots/``.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from engine.config import DataConfig, MethodConfig, ModelConfig, RunConfig, TrainConfig
from engine.track.writer import Writer
from engine.train.events import FailedEvent, FinishedEvent, StartEvent
from engine.train.recorder import Heartbeat, Recorder, explain
from engine.train.store import RUN_ID, RunDir, RunStore, atomic_write_json

#: the owner a tracked run shows on the Runs page
OWNER = "track"


def start(
    name: str,
    config: dict[str, Any] | None = None,
    runs_dir: str | Path | None = None,
    *,
    method: str = "",
    data: str = "",
    backbone: str = "",
    class_names: list[str] | None = None,
    attribute_names: dict[str, list[str]] | None = None,
    batch_size: int | None = None,
    total_steps: int | None = None,
    parameters: int | None = None,
    device: str = "",
    emit_every: float = 0.25,
) -> Run:
    """Start a tracked run in ``runs_dir`` (default ``$SSL_STUDIO_RUNS`` or ``./runs``).

    Args:
        name: the run's label in the app (also the start of its directory name).
        config: your own hyper-parameters, any JSON-able mapping (kept in ``tracked.json``).
        method: your method's name; an engine method name (``byol``, ``simsiam``, ...) gives
            the collapse alarm that method's usual causes. Default: ``config["method"]`` or
            ``"custom"``.
        data: your data set's name (default ``config["data"]`` or ``"custom"``).
        backbone: your network's name, for the runs table (default ``config["backbone"]`` or
            ``"custom"``).
        class_names, attribute_names: words for the label codes you log (map legends).
        batch_size: images per step (for images per second); total_steps: for the progress
            bar and the time left; parameters: the model's size; device: where it trains.
        emit_every: seconds between step events: the logged steps between them are averaged,
            as the engine does (0: one event per logged step).
    """
    config = dict(config or {})
    method = method or str(config.get("method") or "custom")
    data = data or str(config.get("data") or "custom")
    backbone = backbone or str(config.get("backbone") or "custom")
    cfg = RunConfig(name=name, method=MethodConfig(name=method),
                    data=DataConfig(name=data), model=ModelConfig(backbone=backbone),
                    train=TrainConfig(max_seconds=0.0, batch_size=batch_size or None))
    store = RunStore(runs_dir)
    run_dir = RunDir(store.root / _run_id(name))
    run_dir.create(cfg, owner=OWNER, status="running")
    atomic_write_json(run_dir.path / "tracked.json", {"name": name, "config": config})
    return Run(run_dir, method=method, data=data, class_names=class_names,
               attribute_names=attribute_names, batch_size=batch_size, total_steps=total_steps,
               parameters=parameters, device=device, emit_every=emit_every)


def _run_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "run"
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-track-{slug}-{os.urandom(2).hex()}"
    assert RUN_ID.fullmatch(run_id)
    return run_id


class Run:
    """A tracked run (see the module docstring); also a context manager: leaving the block
    finishes the run, an exception marks it failed with the exception as its reason."""

    def __init__(self, run_dir: RunDir, *, method: str, data: str,
                 class_names: list[str] | None, attribute_names: dict[str, list[str]] | None,
                 batch_size: int | None, total_steps: int | None, parameters: int | None,
                 device: str, emit_every: float) -> None:
        self.dir = run_dir
        self.started = time.time()
        self._meta = {"class_names": class_names, "attribute_names": attribute_names}
        self._last_step = 0
        self._ended = False
        self._lock = threading.Lock()
        self.recorder = Recorder(run_dir)
        self.recorder(StartEvent(
            type="start", device=device or "your loop", precision="", resident=False,
            batch_size=batch_size or 0, steps_per_epoch=0, total_steps=total_steps,
            max_seconds=0.0, resumed_from=None, parameters=parameters or 0,
            dataset={"name": data, "train": "?", "test": "?", "image_size": "?",
                     "classes": list(class_names or []), "skipped": 0}))
        self.writer = Writer(self.recorder, method, self.started, emit_every, batch_size,
                             total_steps)
        self._heartbeat = Heartbeat(run_dir).__enter__()
        atexit.register(self._at_exit)

    @property
    def id(self) -> str:
        return self.dir.id

    @property
    def path(self) -> Path:
        return self.dir.path

    @property
    def dropped(self) -> int:
        """Messages dropped because the writer fell behind (the queue was full)."""
        return self.writer.dropped

    # -- logging ------------------------------------------------------------------------------
    def log(self, step: int, loss: Any = None, **scalars: Any) -> None:
        """The loss and any scalars of one step (python numbers or one-element tensors; a
        tensor is read back on the writer thread). ``lr`` and ``epoch`` fill the engine's
        fields; the others get a small chart each on the Train page."""
        if loss is None:
            raise TypeError("run.log needs the step's loss: run.log(step, loss=loss)")
        self._check_open()
        values = {"loss": _detach(loss), **{k: _detach(v) for k, v in scalars.items()}}
        self._last_step = int(step)
        self.writer.put(("log", int(step), time.time(), values))

    def embeddings(self, step: int, h: Any, z: Any = None, labels: Any = None,
                   attributes: dict[str, Any] | None = None, images: Any = None,
                   ids: Any = None) -> None:
        """Embeddings of a fixed set of N images (the same images at every call, in the same
        order): a map snapshot for Explore and Compare, and kNN top-1 of the labelled ones.

        Args:
            h: (N, D) backbone features; z: (N, d) projections (optional).
            labels: (N,) class codes, -1 = unlabelled; attributes: name -> (N,) codes.
            images: uint8 (N, C, H, W) or (N, H, W, C) thumbnails for the map (optional).
            ids: (N,) integer ids of the images (default 0..N-1; two runs logging the same
                ids can be compared image by image).
        """
        self._check_open()
        n = _rows(h, "h")
        for name, x in (("z", z), ("labels", labels), ("images", images), ("ids", ids),
                        *((f"attribute {k!r}", v) for k, v in (attributes or {}).items())):
            if x is not None and _rows(x, name) != n:
                raise ValueError(f"{name} has {_rows(x, name)} rows but h has {n}")
        if images is not None and str(getattr(images, "dtype", "")).split(".")[-1] != "uint8":
            raise ValueError(f"images are uint8 thumbnails (N, C, H, W) or (N, H, W, C), got "
                             f"{getattr(images, 'dtype', type(images).__name__)}")
        tensors = {"h": _copy(h), "z": _copy(z), "labels": _copy(labels),
                   "images": _copy(images), "ids": _copy(ids),
                   "attributes": {k: _copy(v) for k, v in (attributes or {}).items()} or None}
        attrs = tensors.pop("attributes")
        self.writer.put(("embeddings", int(step), tensors, {**self._meta, "attributes": attrs}))

    def views(self, step: int, z0: Any, z1: Any, h: Any = None) -> None:
        """Two views of the same N >= 2 images, (N, d) each, row i of both from image i: the
        collapse diagnostics (spread, effective rank, alignment and uniformity, the cosines
        of positive and negative pairs) and the alarm. ``h``: (N, D) backbone features of
        the first view, for the backbone's effective rank."""
        self._check_open()
        n = _rows(z0, "z0")
        if n < 2 or _rows(z1, "z1") != n or (h is not None and _rows(h, "h") != n):
            raise ValueError("run.views needs z0 and z1 (and h) with the same N >= 2 rows")
        self.writer.put(("views", int(step), _copy(z0), _copy(z1), _copy(h)))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far is on disk (a training loop need not; a test
        or a benchmark may). False when ``timeout`` seconds passed first."""
        self._check_open()
        return self.writer.flush(timeout)

    # -- ending ---------------------------------------------------------------------------
    def finish(self, status: str = "finished", reason: str = "") -> None:
        """Write everything still queued, then mark the run ``status`` (``finished`` or
        ``stopped``) with the last kNN figures and a linear probe on the last embeddings."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.writer.close()
        event: dict[str, Any] = FinishedEvent(
            type="finished", status=status, reason=reason or "the training loop ended",
            steps=self._last_step, epochs=0.0, progress=1.0 if status == "finished" else 0.0,
            images_per_s=0.0, train_seconds=time.time() - self.started,
            elapsed=time.time() - self.started, device="your loop")
        event.update({k: v for k, v in self.writer.last_eval.items() if k.startswith("knn_")})
        if self.writer.last_arrays is not None:
            from engine.track.measure import linear_top1

            probe = linear_top1(self.writer.last_arrays)
            if probe is not None:
                event["linear_top1"] = probe
        if self.writer.dropped:
            event["dropped"] = self.writer.dropped
        if self.writer.errors:
            event["track_errors"] = self.writer.errors[:5]
        self._end(event)

    def fail(self, error: str, trace: str = "") -> None:
        """Mark the run failed with ``error`` (what went wrong, in words)."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.writer.close()
        self._end(FailedEvent(type="failed", error=error, traceback=trace))

    def _end(self, event: dict[str, Any]) -> None:
        self._heartbeat.__exit__()
        self.recorder(event)
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        self.finish("interrupted", "the script ended without calling run.finish()")

    def _check_open(self) -> None:
        if self._ended:
            raise RuntimeError(f"run {self.id} has ended; start a new one with track.start")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("stopped", "interrupted with Ctrl-C")
        else:
            self.fail(explain(exc), "".join(traceback.format_exception(exc, limit=8)))


def _detach(x: Any) -> Any:
    """A scalar as it can be read later: tensors detached (one element, no copy), numbers
    as they are."""
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise ValueError(f"logged scalars have one element; got a tensor of shape "
                             f"{tuple(x.shape)}")
        return x.detach()
    return float(x)


def _copy(x: Any) -> Any:
    """A CPU copy the training loop can no longer change: tensors detached and copied, arrays
    copied, lists as arrays; None stays None."""
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", copy=True)
    import numpy as np

    return np.array(x, copy=True)


def _rows(x: Any, name: str) -> int:
    shape = getattr(x, "shape", None)
    if shape is None:
        import numpy as np

        shape = np.shape(x)
    if len(shape) == 0:
        raise ValueError(f"{name} must have one row per image, got a scalar")
    return int(shape[0])
