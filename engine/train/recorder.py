"""Recording a run: its events written to the run directory and published on an event log,
the trainer driven to the end (``execute``), and the heartbeat that marks the run as live.
"""

from __future__ import annotations

import errno
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from engine.config import RunConfig
from engine.data import Dataset, progress
from engine.train import checkpoint
from engine.train.events import HELD, EventLog, FailedEvent, StatusEvent
from engine.train.loop import Trainer
from engine.train.store import LIVE, RunDir, owner_fields

#: seconds between heartbeats of a live run (readers call a run silent for 30 s an orphan)
HEARTBEAT_SECONDS = 2.0
#: statuses a run can be resumed from (with a checkpoint)
RESUMABLE = ("stopped", "interrupted")


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


class StopRequest:
    """Whether a run was asked to stop (call it), and the status and reason it ends with."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.status, self.reason = "stopped", "stopped by the user"

    def __call__(self) -> bool:
        return self._event.is_set()

    def set(self, status: str = "stopped", reason: str = "stopped by the user") -> None:
        """Ask for a stop; an ``interrupted`` request overrides an earlier plain stop."""
        if not self._event.is_set() or status == "interrupted":
            self.status, self.reason = status, reason
        self._event.set()


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
        elif kind == "checkpoint":
            self.run.save_checkpoint(event.pop("state"))
        elif kind == "status" and event.get("status") in LIVE:
            self.run.write_summary({"status": event["status"], **owner_fields()})
        elif kind == "start":
            self.run.write_summary({"status": "running", "device": event["device"],
                                    "dataset": event["dataset"],
                                    "skipped_files": event["dataset"].get("skipped", 0),
                                    **({"initialised_from": event["initialised_from"]}
                                       if event.get("initialised_from") else {})})
        elif kind == "eval":
            self.run.write_summary({k: v for k, v in event.items()
                                    if k.startswith(("knn_", "classifier_"))})
        elif kind == "finished":
            resumable = event["status"] in RESUMABLE and self.run.checkpoint_path() is not None
            self.run.write_summary({**event, "ended": time.time(), "resumable": resumable},
                                   drop=("error",))
        elif kind == "failed":
            self.run.write_summary({"status": "failed", "error": event["error"],
                                    "reason": event["error"], "ended": time.time(),
                                    "resumable": False})
        if kind != "checkpoint":
            self.run.append_metric(event)
        self.log.append(event)
        if self.listener is not None:
            self.listener(event)


def hold(running: threading.Event, stop: Callable[[], bool], recorder: Recorder,
         poll: float) -> None:
    """Wait while ``running`` is clear (the run is paused) until it is set or ``stop()``;
    the run's ``wait_if_paused``. Records a ``paused`` event (message :data:`HELD`) when it
    starts to hold and a ``running`` one when it goes on, so readers of ``metrics.jsonl`` know
    whether a paused run has stopped stepping yet."""
    if running.is_set():
        return
    recorder(StatusEvent(type="status", status="paused", message=HELD))
    while not running.wait(timeout=poll):
        if stop():
            return
    recorder(StatusEvent(type="status", status="running"))


def execute(
    cfg: RunConfig,
    recorder: Recorder,
    should_stop: Callable[[], bool] = lambda: False,
    wait_if_paused: Callable[[], None] = lambda: None,
    dataset: Dataset | None = None,
    *,
    resume: bool = False,
    emit_every: float = 0.25,
) -> dict[str, Any]:
    """Build the trainer and run it to the end, recording every event. Never raises for a
    failure inside the run: it is recorded as a ``failed`` event and returned.

    ``resume``: continue from the run's checkpoint; metrics.jsonl is cut back to its step and
    a ``resumed`` status event marks the seam. A :class:`StopRequest` as ``should_stop`` gives
    a stopped run its status and reason (``interrupted`` at shutdown)."""
    try:
        state = None
        if resume:
            path = recorder.run.checkpoint_path()
            if path is None:
                raise ValueError(f"run {recorder.run.id} has no checkpoint to resume from")
            state = checkpoint.load(path)
            recorder.run.truncate_metrics(int(state["step"]))
            recorder(StatusEvent(type="status", status="resumed", step=int(state["step"])))
        recorder(StatusEvent(type="status", status="loading", message="loading data"))
        with progress.reporting(lambda message: recorder(
                StatusEvent(type="status", status="loading", message=message))):
            trainer = Trainer(cfg, dataset, emit_every=emit_every)
        if state is not None:
            trainer.restore(state)
            del state
        last: dict[str, Any] = {}
        for event in trainer.events(should_stop):
            if (event["type"] == "finished" and event["status"] == "stopped"
                    and isinstance(should_stop, StopRequest)):
                event = {**event, "status": should_stop.status, "reason": should_stop.reason}
            recorder(event)
            last = event
            wait_if_paused()
        return last
    except Exception as exc:  # noqa: BLE001 — any failure becomes a failed run with its reason
        event = FailedEvent(type="failed", error=explain(exc),
                            traceback=traceback.format_exc(limit=8))
        try:
            recorder(event)
        except OSError:
            recorder.log.append(event)
        return event


class Heartbeat:
    """A daemon thread that refreshes a run's heartbeat every :data:`HEARTBEAT_SECONDS`
    while the run is live; a context manager."""

    def __init__(self, run: RunDir, seconds: float = HEARTBEAT_SECONDS) -> None:
        self.run, self.seconds = run, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"run-{run.id}-heartbeat",
                                        daemon=True)

    def _main(self) -> None:
        while True:
            try:
                self.run.beat()
            except OSError:
                pass  # a full disk or a deleted run: the next beat tries again
            if self._stop.wait(self.seconds):
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
