"""Running a training: recording events to the run directory, in the foreground or in a
background thread that the UI controls (start, pause, resume, stop), and resuming a stopped or
interrupted run from its checkpoint in the same directory.

The thread owns the model. It never touches the UI: it appends events to an
:class:`EventLog` that any number of readers follow, and writes everything to disk, so a
reloaded page, a second tab or a restarted app finds the run again. A heartbeat thread keeps
the run's summary fresh while it is live (also while paused or evaluating), so readers in any
process can tell a live run from an orphan (``RunDir.status``).

Shutdown: :func:`install_shutdown` stops live runs when the process exits or gets SIGTERM /
SIGINT; they end ``interrupted`` with a final checkpoint and can be resumed.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.config import RunConfig
from engine.data import Dataset
from engine.encoder.parent import parent_in
from engine.memory import give_back
from engine.train.events import EventLog, StatusEvent
from engine.train.recorder import (
    RESUMABLE,
    Heartbeat,
    Recorder,
    StopRequest,
    execute,
    explain,
    hold,
)
from engine.train.store import LIVE, RunDir, RunStore, owner_fields

__all__ = ["Heartbeat", "Recorder", "Runner", "StopRequest", "execute", "explain",
           "install_shutdown", "resume_foreground", "run_foreground"]

#: the reason a run ends with when its process shuts down
SHUTDOWN_REASON = "the server shut down"

_SHUTTING_DOWN = threading.Event()
_RUNNERS: weakref.WeakSet[Runner] = weakref.WeakSet()


class Runner:
    """One run in a background thread. ``start()``, ``pause()``, ``resume()``, ``stop()``.

    ``run``: the run's directory, already created. ``resume=True`` continues it from its
    checkpoint. ``on_exit(runner)`` is called from the thread after the final status is
    written. ``emit_every``: seconds between step events (``Trainer``).
    """

    def __init__(
        self,
        cfg: RunConfig,
        run: RunDir,
        dataset: Dataset | None = None,
        *,
        resume: bool = False,
        on_exit: Callable[[Runner], None] | None = None,
        emit_every: float = 0.25,
    ) -> None:
        self.cfg = cfg
        self.run = run
        self.log = EventLog()
        self._dataset = dataset
        self._resume_run = resume
        self._on_exit = on_exit
        self._emit_every = emit_every
        self._stop = StopRequest()
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._main, name=f"run-{self.run.id}", daemon=True)
        self.result: dict[str, Any] | None = None
        _RUNNERS.add(self)

    @property
    def id(self) -> str:
        return self.run.id

    def start(self) -> Runner:
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            recorder = Recorder(self.run, self.log)
            with Heartbeat(self.run):
                self.result = execute(
                    self.cfg, recorder, self._stop,
                    lambda: hold(self._running, self._stop, recorder, poll=0.1), self._dataset,
                    resume=self._resume_run, emit_every=self._emit_every)
        finally:
            give_back()  # what the run's steps freed, once its trainer is gone
            self._exited()

    def _exited(self) -> None:
        """The run is over: let go of its data and call its owner's hook."""
        self._dataset = None
        if self._on_exit is not None:
            try:
                self._on_exit(self)
            except Exception:  # noqa: BLE001 — the run is over; its owner's hook may fail
                traceback.print_exc()

    def _set_live_status(self, status: str) -> None:
        if self.run.summary().get("status") in LIVE:
            self.run.write_summary({"status": status})
        self.log.append({**StatusEvent(type="status", status=status), "time": time.time()})

    def pause(self) -> None:
        if self.alive and self._running.is_set():
            self._running.clear()
            self._set_live_status("paused")

    def resume(self) -> None:
        """Un-pause."""
        if not self._running.is_set():
            self._running.set()
            self._set_live_status("running")

    def stop(self, timeout: float = 10.0, *, status: str = "stopped",
             reason: str = "stopped by the user") -> bool:
        """Ask the run to stop (final checkpoint, then ``status`` with ``reason``) and wait up
        to ``timeout`` s; True when the thread ended. While the process shuts down every stop
        is an interruption (:data:`SHUTDOWN_REASON`)."""
        if _SHUTTING_DOWN.is_set():
            status, reason = "interrupted", SHUTDOWN_REASON
        self._stop.set(status, reason)
        self._running.set()
        if self._thread.ident is None:  # never started
            return True
        if self._thread is not threading.current_thread():
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


def install_shutdown(stop_all: Callable[[], None]) -> None:
    """On process exit (atexit) and, when called from the main thread, on SIGTERM/SIGINT:
    call ``stop_all`` and stop every other live :class:`Runner`; they end ``interrupted``
    (reason :data:`SHUTDOWN_REASON`) with a final checkpoint, resumable. A signal handler
    installed before is called after; without one the signal's default follows (the process
    ends)."""

    def shutdown() -> None:
        _SHUTTING_DOWN.set()
        try:
            stop_all()
        except Exception:  # noqa: BLE001 — the process is going; stop what can be stopped
            traceback.print_exc()
        for runner in list(_RUNNERS):
            if runner.alive:
                runner.stop(status="interrupted", reason=SHUTDOWN_REASON)

    atexit.register(shutdown)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            shutdown()
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(sig, handler)


@contextmanager
def _signals_stop(stop: StopRequest) -> Iterator[list[int]]:
    """SIGTERM/SIGINT ask ``stop`` for an interruption instead of ending the process (main
    thread only); yields the list of signals caught. The previous handlers come back after."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum: int, frame: Any) -> None:
        caught.append(signum)
        stop.set("interrupted", f"interrupted by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield caught
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _foreground(
    cfg: RunConfig, run: RunDir, on_event: Callable[[dict[str, Any]], None] | None,
    dataset: Dataset | None, resume: bool,
) -> dict[str, Any]:
    """Run in this thread; SIGTERM/SIGINT end the run ``interrupted`` with a final checkpoint,
    then the process exits (status 128 + the signal's number)."""
    stop = StopRequest()
    with _signals_stop(stop) as caught, Heartbeat(run):
        last = execute(cfg, Recorder(run, listener=on_event), stop, dataset=dataset,
                       resume=resume)
    if caught:
        print(f"run {run.id} interrupted at step {last.get('steps', 0)}; continue it with: "
              f"python -m engine resume {run.id} --runs-dir {run.path.parent}", file=sys.stderr)
        raise SystemExit(128 + caught[0])
    return last


def run_foreground(
    cfg: RunConfig,
    store: RunStore,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    dataset: Dataset | None = None,
    owner: str = "cli",
) -> tuple[RunDir, dict[str, Any]]:
    """Train in this thread (CLI, tests, lessons); returns the run directory and the last event.

    In the main thread, SIGTERM/SIGINT interrupt the run (final checkpoint, status
    ``interrupted``) and then end the process with ``SystemExit``. A run id in
    ``model.init_from`` is looked up in ``store`` (``ValueError`` when it is not there)."""
    cfg = parent_in(cfg, store)
    run = store.create(cfg, owner=owner, status="loading")
    return run, _foreground(cfg, run, on_event, dataset, resume=False)


def check_resumable(run: RunDir) -> None:
    """``ValueError`` with one line when ``run`` cannot be resumed: it is live, finished or
    failed, or it has no checkpoint."""
    status = run.status()
    if status in LIVE:
        pid = run.summary().get("pid")
        raise ValueError(f"run {run.id} is {status} (process {pid}); stop it before resuming")
    if status not in RESUMABLE:
        raise ValueError(f"run {run.id} is {status}; only a stopped or interrupted run can be "
                         "resumed")
    if run.checkpoint_path() is None:
        raise ValueError(f"run {run.id} has no checkpoint to resume from")


def resume_foreground(
    run: RunDir,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    dataset: Dataset | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Continue a stopped or interrupted run from its checkpoint, in this thread and in the
    same directory; returns it and the last event. ``ValueError`` when it cannot be resumed."""
    check_resumable(run)
    run.write_summary({"status": "loading", **owner_fields()},
                      drop=("reason", "error", "ended", "resumable"))
    return run, _foreground(run.config(), run, on_event, dataset, resume=True)
