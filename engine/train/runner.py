"""Running a training: recording events to the run directory, in the foreground or in a
background thread that the UI controls (start, pause, resume, stop).

The thread owns the model. It never touches the UI: it appends events to an
:class:`EventLog` that any number of readers follow, and writes everything to disk, so a
reloaded page, a second tab or a restarted app finds the run again.
"""

from __future__ import annotations

import errno
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from engine.config import RunConfig
from engine.data import Dataset
from engine.train.events import EventLog
from engine.train.loop import Trainer
from engine.train.store import RunDir, RunStore


def explain(exc: BaseException) -> str:
    """A message a person can act on, for an exception that ended a run."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return ("out of memory on the training device: lower train.batch_size or "
                "data.image_size, or pick a smaller backbone")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"the disk is full ({exc.filename or 'run directory'}): free space and start again"
    if isinstance(exc, ValueError | RuntimeError | OSError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class Recorder:
    """Writes a run's events to its directory and publishes them on an event log."""

    def __init__(
        self,
        run: RunDir,
        log: EventLog | None = None,
        listener: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.run = run
        self.log = log if log is not None else EventLog()
        self.listener = listener

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        event = {**event, "time": time.time()}
        if kind == "snapshot":
            arrays = event.pop("arrays")
            self.run.save_snapshot(event["step"], arrays)
            self.log.put("snapshot", {"step": event["step"], **arrays})
        elif kind == "checkpoint":
            state = event.pop("state")
            self.run.save_checkpoint(state)
        elif kind == "start":
            self.run.write_summary({"status": "running", "device": event["device"],
                                    "dataset": event["dataset"]})
        elif kind == "eval":
            self.run.write_summary({k: v for k, v in event.items() if k.startswith("knn_")})
        elif kind == "finished":
            self.run.write_summary({**event, "ended": time.time()})
        elif kind == "failed":
            self.run.write_summary({"status": "failed", "error": event["error"],
                                    "ended": time.time()})
        if kind != "checkpoint":
            self.run.append_metric(event)
        self.log.append(event)
        if self.listener is not None:
            self.listener(event)


def execute(
    cfg: RunConfig,
    recorder: Recorder,
    should_stop: Callable[[], bool] = lambda: False,
    wait_if_paused: Callable[[], None] = lambda: None,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Build the trainer and run it to the end, recording every event. Never raises for a
    failure inside the run: it is recorded as a ``failed`` event and returned."""
    try:
        recorder({"type": "status", "status": "loading", "message": "loading data"})
        trainer = Trainer(cfg, dataset)
        last: dict[str, Any] = {}
        for event in trainer.events(should_stop):
            recorder(event)
            last = event
            wait_if_paused()
        return last
    except Exception as exc:  # noqa: BLE001 — any failure becomes a failed run with its reason
        event = {"type": "failed", "error": explain(exc),
                 "traceback": traceback.format_exc(limit=8)}
        try:
            recorder(event)
        except OSError:
            recorder.log.append(event)
        return event


class Runner:
    """One run in a background thread. ``start()``, ``pause()``, ``resume()``, ``stop()``."""

    def __init__(self, cfg: RunConfig, store: RunStore, dataset: Dataset | None = None) -> None:
        self.cfg = cfg
        self.run = store.create(cfg)
        self.log = EventLog()
        self._dataset = dataset
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._main, name=f"run-{self.run.id}", daemon=True)
        self.result: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return self.run.id

    def start(self) -> Runner:
        self._thread.start()
        return self

    def _main(self) -> None:
        self.result = execute(self.cfg, Recorder(self.run, self.log), self._stop.is_set,
                              self._wait_if_paused, self._dataset)
        self._dataset = None

    def _wait_if_paused(self) -> None:
        while not self._running.wait(timeout=0.1):
            if self._stop.is_set():
                return

    def pause(self) -> None:
        if self.alive and self._running.is_set():
            self._running.clear()
            self.log.append({"type": "status", "status": "paused", "time": time.time()})

    def resume(self) -> None:
        if not self._running.is_set():
            self._running.set()
            self.log.append({"type": "status", "status": "running", "time": time.time()})

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the run to stop and wait up to ``timeout`` s; True when the thread ended."""
        self._stop.set()
        self._running.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def paused(self) -> bool:
        return self.alive and not self._running.is_set()


def run_foreground(
    cfg: RunConfig,
    store: RunStore,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    dataset: Dataset | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Train in this thread (CLI, tests, lessons); returns the run directory and the last event."""
    run = store.create(cfg)
    return run, execute(cfg, Recorder(run, listener=on_event), dataset=dataset)
