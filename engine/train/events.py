"""A run's events, as typed records, and the thread-safe log that readers follow with a cursor.

The loop yields these records; the recorder writes each to ``metrics.jsonl`` (one JSON object a
line, ``type`` first) and appends it to the run's :class:`EventLog`; the app, the lessons and
the CLI read them back by these names. Large payloads (an embedding snapshot's arrays, a
checkpoint's state) go to the run directory only and never to ``metrics.jsonl``.
"""

from __future__ import annotations

import threading
from typing import Any, Literal, TypedDict

EventType = Literal[
    "start", "status", "step", "eval", "diagnostics", "snapshot", "checkpoint", "finished",
    "failed",
]


class StartEvent(TypedDict):
    """The loop is set up: where it trains and what it will do."""

    type: Literal["start"]
    device: str
    precision: str  # "bf16" | "fp32"
    resident: bool  # the train split sits on the training device
    batch_size: int
    steps_per_epoch: int
    total_steps: int | None  # None: the time budget alone ends the run
    max_seconds: float
    resumed_from: int | None  # the checkpoint's step when the run was resumed
    #: what the backbone started from: {"init_from": {"run", "step"}} (another run's encoder)
    #: or {"pretrained": {"file", "loaded", "skipped"}}; None for a random start
    initialised_from: dict[str, Any] | None
    parameters: int
    dataset: dict[str, Any]  # Dataset.describe(), with "skipped" unreadable files


class StatusEvent(TypedDict, total=False):
    """A change of state: queued, loading, running, paused, resumed (from ``step``)."""

    type: Literal["status"]
    status: str
    message: str
    step: int


#: The message of the ``paused`` event a run records when it holds: Pause marks the run paused
#: at once, and it holds once the steps or the evaluation under way have finished.
HELD = "held"


class StepEvent(TypedDict):
    """The mean of the steps since the last step event (a few a second), plus the method's
    own logged scalars by name (``contrast_acc``, ``tau``, ``rot_acc``, ...)."""

    type: Literal["step"]
    step: int
    epoch: float
    loss: float
    lr: float  # of the last of those steps
    progress: float  # 0..1, the one value the schedules and hooks saw (engine.train.schedule)
    images_per_s: float
    elapsed: float  # seconds of the run's own time (pauses excluded)


class EvalEvent(TypedDict, total=False):
    """kNN top-1 on the fixed query set: ``knn_top1`` of h, ``knn_top1_z`` of z, and
    ``knn_<attribute>`` for each extra label of the data set (shapes: colour, size, ...)."""

    type: Literal["eval"]
    step: int
    knn_top1: float
    knn_top1_z: float
    classifier_top1: float  # the method's own classifier on the test queries
    eval_seconds: float


class DiagnosticsEvent(TypedDict, total=False):
    """Collapse diagnostics on the fixed probe batch (``engine.eval.collapse.diagnostics``)
    and the alarm they raise (kind, severity, message, causes)."""

    type: Literal["diagnostics"]
    step: int
    alarm: dict[str, Any]


class SnapshotEvent(TypedDict):
    """An embedding snapshot was saved (``snapshots/step_*.npz``); ``arrays`` travel only from
    the loop to the recorder."""

    type: Literal["snapshot"]
    step: int


class CheckpointEvent(TypedDict):
    """Everything needed to continue (``engine.train.checkpoint``); never in metrics.jsonl."""

    type: Literal["checkpoint"]
    step: int
    state: dict[str, Any]


class FinishedEvent(TypedDict, total=False):
    """The run ended by itself or was stopped; the last evaluation's ``knn_*`` and the linear
    probe's ``linear_top1`` come with it."""

    type: Literal["finished"]
    status: str  # finished | stopped | interrupted
    reason: str
    steps: int
    epochs: float
    progress: float
    images_per_s: float
    train_seconds: float
    elapsed: float
    device: str
    threads: int  # CPU intra-op threads the steps ran on (engine.device.StepThreads)


class FailedEvent(TypedDict, total=False):
    """The run failed: ``error`` says why, in words a person can act on."""

    type: Literal["failed"]
    error: str
    traceback: str


Event = (
    StartEvent | StatusEvent | StepEvent | EvalEvent | DiagnosticsEvent | SnapshotEvent
    | CheckpointEvent | FinishedEvent | FailedEvent
)


class EventLog:
    """Append-only list of JSON-able dicts.

    Each reader keeps its own cursor: ``events, cursor = log.read(cursor)``.
    """

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def append(self, event: dict[str, Any]) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    def read(self, cursor: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events since ``cursor`` and the new cursor."""
        with self._lock:
            new = self._events[cursor:]
            return new, cursor + len(new)

    def wait(self, cursor: int, timeout: float) -> bool:
        """Block until there is an event past ``cursor`` (True) or the timeout passes."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._events) > cursor, timeout)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)
