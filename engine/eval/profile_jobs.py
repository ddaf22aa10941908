"""Invariance profiles computed in one background thread, on request, cached beside each run.

The app asks for a run's profile (:meth:`ProfileJobs.request`); the answer is the cached profile
of the run's current checkpoint when it exists (``engine.eval.invariance.load_profile``), else
``None`` after queueing the computation. One worker thread, as for UMAP maps
(``engine.eval.maps``): a profile embeds a few thousand images, and it shares the machine with
training. :meth:`status` and :meth:`progress` tell the UI what to show meanwhile.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.eval.invariance import invariance_profile, load_profile, save_profile

#: (run) -> RunEncoder; the default reads the run's checkpoint and loads its data set
EncoderFactory = Callable[[Any], Any]


_STEPS: dict[tuple[str, int], int] = {}  # (checkpoint path, mtime) -> its step
_STEPS_LOCK = threading.Lock()


def _checkpoint_step(run: Any) -> int | None:
    """The step of a run's last checkpoint; the file is read once per version on disk."""
    path = run.checkpoint_path()
    if path is None:
        return None
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:
        return None
    with _STEPS_LOCK:
        if key in _STEPS:
            return _STEPS[key]
    from engine.train import checkpoint

    step = int(checkpoint.load(path)["step"])
    with _STEPS_LOCK:
        _STEPS[key] = step
    return step


def _default_encoder(run: Any) -> Any:
    from engine.eval.encoder import RunEncoder

    return RunEncoder.from_run(run)


class ProfileJobs:
    """Profiles by run, one at a time in a background thread.

    encoder: builds a run's encoder (tests pass their own); options: passed to
    :func:`invariance_profile` (``n_bank``, ``n_query``, ``ops``).
    """

    def __init__(self, encoder: EncoderFactory | None = None, **options: Any) -> None:
        self._encoder = encoder or _default_encoder
        self._options = options
        self._lock = threading.Lock()
        self._queue: OrderedDict[str, Any] = OrderedDict()  # run id -> RunDir
        self._running: str | None = None
        self._progress: dict[str, float] = {}
        self._errors: dict[str, str] = {}
        self._worker: threading.Thread | None = None

    def cached(self, run: Any) -> dict[str, Any] | None:
        """The profile of the run's current checkpoint if computed, else None."""
        step = _checkpoint_step(run)
        return None if step is None else load_profile(Path(run.path), step)

    def request(self, run: Any) -> dict[str, Any] | None:
        """The cached profile, or None after queueing its computation (once). A run without a
        checkpoint raises ValueError saying so."""
        if run.checkpoint_path() is None:
            raise ValueError(f"run {run.id} has no checkpoint yet: its profile needs the "
                             "trained weights (written at the end and every 2 minutes)")
        done = self.cached(run)
        if done is not None:
            return done
        with self._lock:
            if run.id != self._running and run.id not in self._queue:
                self._errors.pop(run.id, None)
                self._queue[run.id] = run
                self._progress[run.id] = 0.0
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name="profile-worker",
                                                daemon=True)
                self._worker.start()
        return None

    def status(self, run_id: str) -> str:
        """``computing`` | ``queued`` | ``failed`` | ``idle``."""
        with self._lock:
            if run_id == self._running:
                return "computing"
            if run_id in self._queue:
                return "queued"
            if run_id in self._errors:
                return "failed"
        return "idle"

    def progress(self, run_id: str) -> float:
        with self._lock:
            return self._progress.get(run_id, 0.0)

    def error(self, run_id: str) -> str | None:
        with self._lock:
            return self._errors.get(run_id)

    def busy(self) -> bool:
        with self._lock:
            return self._running is not None or bool(self._queue)

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the queue is empty (tests); True when it is."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return not self.busy()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._running = None
                    return
                run_id, run = self._queue.popitem(last=False)
                self._running = run_id

            def report(fraction: float, run_id: str = run_id) -> None:
                with self._lock:
                    self._progress[run_id] = fraction

            try:
                profile = invariance_profile(self._encoder(run), progress=report, **self._options)
                save_profile(Path(run.path), profile)
            except Exception as exc:  # noqa: BLE001 — reported through error()
                with self._lock:
                    self._errors[run_id] = str(exc) or type(exc).__name__
            with self._lock:
                self._running = None
