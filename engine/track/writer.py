"""The tracker's background writer: a bounded queue and one thread that turns what the training
loop logged into the run directory's events, through the engine's own :class:`Recorder`.

The training thread only copies tensors and puts a message on the queue (``put`` never waits:
when the queue is full the message is dropped and counted). The thread does everything slow:
reading scalars back (``float`` of a GPU tensor waits for that tensor here, not in the loop),
averaging the logged steps into a step event every ``emit_every`` seconds (as the engine's loop
does), the kNN accuracy, the snapshot file and the collapse diagnostics.
"""

from __future__ import annotations

import math
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.track import measure
from engine.train.events import StepEvent
from engine.train.recorder import Recorder, explain

#: messages the queue holds before it drops new ones (a training step never waits)
QUEUE_SIZE = 1024


@dataclass
class StepAverage:
    """The logged steps since the last step event: sums of every scalar, and their count."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    step: int = 0
    logs: int = 0
    time: float = 0.0

    def add(self, step: int, t: float, values: dict[str, float]) -> None:
        for name, value in values.items():
            if math.isfinite(value):
                self.sums[name] = self.sums.get(name, 0.0) + value
                self.counts[name] = self.counts.get(name, 0) + 1
            self.last[name] = value
        self.step, self.time = step, t
        self.logs += 1

    def mean(self, name: str) -> float:
        n = self.counts.get(name, 0)
        return self.sums[name] / n if n else float(self.last.get(name, math.nan))


class Writer:
    """Consumes a tracked run's messages on a daemon thread; see the module docstring.

    Args:
        recorder: writes events to the run directory (``engine.train.recorder.Recorder``).
        method: the method name the collapse alarm picks its causes by ("" for generic ones).
        started: ``time.time()`` of the run's start (for ``elapsed``).
        emit_every: seconds between step events (0: one event per logged step).
        batch_size: images per step, for images per second (None: not reported).
        total_steps: for the progress bar (None: progress stays 0).
    """

    def __init__(self, recorder: Recorder, method: str, started: float, emit_every: float,
                 batch_size: int | None, total_steps: int | None,
                 size: int | None = None) -> None:
        self.recorder, self.method, self.started = recorder, method or None, started
        self.emit_every, self.batch_size, self.total_steps = emit_every, batch_size, total_steps
        self.queue: queue.Queue = queue.Queue(maxsize=size or QUEUE_SIZE)
        self.dropped = 0
        self.errors: list[str] = []
        self.views_logged = False
        self.last_eval: dict[str, Any] = {}
        self.last_arrays: dict[str, np.ndarray] | None = None
        self._pending = StepAverage()
        self._last_emit = started
        self._thread = threading.Thread(target=self._main, daemon=True,
                                        name=f"track-{recorder.run.id}-writer")
        self._thread.start()

    # -- the training thread's side -------------------------------------------------------
    def put(self, message: tuple) -> bool:
        """Queue a message without waiting; False (and counted) when the queue is full."""
        try:
            self.queue.put_nowait(message)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written (steps averaged so far included);
        False when ``timeout`` passed first."""
        done = threading.Event()
        self.queue.put(("flush", done))
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued so far, then end the thread."""
        self.queue.put(("close",))
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the writer thread ----------------------------------------------------------------
    def _main(self) -> None:
        while True:
            wait = None if not self._pending.logs else max(
                0.0, self._last_emit + self.emit_every - time.time())
            try:
                message = self.queue.get(timeout=wait)
            except queue.Empty:
                self._guard(self._emit_steps)
                continue
            if message[0] == "close":
                self._guard(self._emit_steps)
                return
            self._guard(self._handle, message)

    def _guard(self, fn: Any, *args: Any) -> None:
        """Run ``fn``; a failure is kept (and warned about once) instead of ending the thread,
        so one bad message never silences the rest of the run."""
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 — reported at finish and in the summary
            if not self.errors:
                warnings.warn(f"engine.track: {explain(exc)}", RuntimeWarning, stacklevel=1)
            self.errors.append(explain(exc))

    def _handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "log":
            _, step, t, values = message
            self._pending.add(step, t, {k: _scalar(v) for k, v in values.items()})
            if time.time() - self._last_emit >= self.emit_every:
                self._emit_steps()
        elif kind == "embeddings":
            self._emit_steps()
            self._embeddings(*message[1:])
        elif kind == "views":
            self._emit_steps()
            _, step, z0, z1, h = message
            self.views_logged = True
            self.recorder(measure.diagnostics_event(step, self.method, _np(z0), _np(z1),
                                                    None if h is None else _np(h)))
        elif kind == "flush":
            self._emit_steps()
            message[1].set()

    def _embeddings(self, step: int, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        arrays = measure.snapshot_arrays(
            **{k: (None if v is None else _np(v)) for k, v in tensors.items()}, **meta)
        evaluation = measure.knn_event(step, arrays)
        if evaluation is not None:
            self.recorder(evaluation)
            self.last_eval = evaluation
        self.recorder({"type": "snapshot", "step": int(step), "arrays": arrays})
        self.last_arrays = arrays
        if not self.views_logged and len(arrays["h"]) >= 2:
            z = arrays.get("z", arrays["h"])
            self.recorder(measure.diagnostics_event(step, self.method, z, None, arrays["h"]))

    def _emit_steps(self) -> None:
        p = self._pending
        if not p.logs:
            return
        dt = max(p.time - self._last_emit, 1e-9)
        event: dict[str, Any] = StepEvent(
            type="step", step=int(p.step), epoch=float(p.last.get("epoch", 0.0)),
            loss=p.mean("loss"), lr=float(p.last.get("lr", 0.0)),
            progress=min(1.0, p.step / self.total_steps) if self.total_steps else 0.0,
            images_per_s=self.batch_size * p.logs / dt if self.batch_size else 0.0,
            elapsed=p.time - self.started)
        for name in p.last:
            if name not in event:
                event[name] = p.mean(name)
        self._last_emit = p.time
        self._pending = StepAverage()
        self.recorder(event)


def _scalar(value: Any) -> float:
    """A float from a python number, a numpy scalar or a one-element tensor (read back here,
    on the writer thread)."""
    if hasattr(value, "item"):
        value = value.item()
    return float(value)


def _np(x: Any) -> np.ndarray:
    """A numpy array of a CPU tensor (already a copy, made by the training thread) or an
    array."""
    if hasattr(x, "numpy"):
        return x.float().numpy() if x.is_floating_point() else x.numpy()
    return np.asarray(x)
