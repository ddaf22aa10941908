"""A run trained in a child process that the server steers: the app's runs.

A server that trains hundreds of runs in its own threads keeps the memory their steps freed
(glibc's heaps fragment; see :mod:`engine.memory`): it grew by 40-60 % over a workshop's
afternoon. Here each run trains in a process of its own, forked from a small server process
that imported the engine once (multiprocessing's ``forkserver``), so a run starts in a fraction
of a second and everything it allocated goes back to the system when it ends. A crash of the
run (a segfault, the kernel's out-of-memory killer) cannot take the app down: the run ends
``failed`` with the reason.

:class:`ProcessRunner` is a :class:`~engine.train.runner.Runner` (same ``start``, ``pause``,
``resume``, ``stop``, ``alive``, ``log``): its thread only starts the child, passes on the
steering (a pipe, polled every :data:`POLL_S`) and takes in the child's light events (start,
step, status, eval, the end) for the scheduler. Everything else the child writes to the run
directory, which the pages read as for any run. The child ends ``interrupted`` with a final
checkpoint when the server goes away, even by ``kill -9`` (its end of the pipe closes).
"""

from __future__ import annotations

import signal
import threading
import time
from functools import cache
from multiprocessing import spawn
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engine.config import RunConfig
from engine.data import Dataset
from engine.memory import give_back
from engine.train.recorder import Heartbeat, Recorder, StopRequest, execute, hold
from engine.train.runner import SHUTDOWN_REASON, Runner
from engine.train.store import LIVE, RunDir

__all__ = ["ProcessRunner", "make_process_runner"]

#: seconds between the thread's looks at the steering and the child
POLL_S = 0.1
#: event types passed back to the server (the rest only go to the run directory)
FORWARDED = frozenset({"start", "step", "status", "eval", "finished", "failed"})
#: what the fork server imports once, so that no run imports it again (torch's compiler stack,
#: which its optimisers import on their first step, takes seconds)
PRELOAD = (__name__, "engine.recipe", "torch._dynamo", "torch.distributed", "faiss")


_STARTING = threading.local()


@cache
def _context() -> Any:
    """The forkserver context, its server preloaded with the engine (imported once); where
    there is no fork server (Windows), new processes that import the engine each time."""
    import torch.multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
    else:
        ctx = mp.get_context("spawn")
    parent_data = spawn.get_preparation_data

    def preparation_data(name: str) -> dict[str, Any]:
        """What a new process is told of this one, without the main module when a run's child
        starts: Streamlit puts the page it is running in ``sys.modules["__main__"]``, and the
        child would run that page again (its target, :func:`child_main`, needs no main)."""
        data = parent_data(name)
        if getattr(_STARTING, "child", False):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    spawn.get_preparation_data = preparation_data
    return ctx


class ProcessRunner(Runner):
    """One run in a child process; the interface of :class:`Runner`."""

    def _main(self) -> None:
        try:
            self._supervise()
        except Exception as exc:  # noqa: BLE001 — the child could not start: the run says why
            self._fail(f"the training process could not start: {exc}")
        finally:
            give_back()  # what this process freed while it followed the run (page reruns too)
            self._exited()

    def _supervise(self) -> None:
        if self._dataset is not None:
            self._dataset.share_memory()  # sent as it is, not moved under a reader
        ctx = _context()
        ours, theirs = ctx.Pipe()
        child = ctx.Process(
            target=child_main, name=f"run-{self.run.id}",
            args=(self.cfg, str(self.run.path), self._dataset, self._resume_run,
                  self._emit_every, theirs))
        _STARTING.child = True
        try:
            child.start()
        finally:
            _STARTING.child = False
        theirs.close()  # the child's end lives in the child alone: its death is our EOF
        self._dataset = None
        sent_stop, sent_running = False, True
        with ours:
            while True:
                if self._stop() and not sent_stop:
                    self._send(ours, ("stop", self._stop.status, self._stop.reason))
                    sent_stop = True
                running = self._running.is_set()
                if running != sent_running and not sent_stop:
                    self._send(ours, ("resume",) if running else ("pause",))
                    sent_running = running
                try:
                    if ours.poll(POLL_S):
                        self._take(ours.recv())
                except (EOFError, OSError):
                    break  # the child has gone: its end of the pipe closed with it
        # Not child.is_alive() before the pipe closes: the exit code comes from the fork server,
        # and with the fork server gone (a SIGTERM to the app's process group ends it first) a
        # child still writing its final checkpoint reads as ended with code 255.
        child.join()
        if child.exitcode != 0:
            self._fail(_death(child.exitcode))

    @staticmethod
    def _send(conn: Connection, message: tuple) -> None:
        try:
            conn.send(message)
        except OSError:
            pass  # the child has gone; the loop sees it

    def _take(self, message: tuple) -> None:
        kind, payload = message
        if kind == "event":
            self.log.append(payload)
        elif kind == "result":
            self.result = payload

    def _fail(self, reason: str) -> None:
        """Mark the run failed when the child did not end it itself."""
        if self.run.summary().get("status") in LIVE:
            self.run.write_summary({"status": "failed", "error": reason, "reason": reason,
                                    "ended": time.time(), "resumable": False})
            self.result = {"type": "failed", "error": reason}
            self.log.append({**self.result, "time": time.time()})

    def _set_live_status(self, status: str) -> None:
        """The child writes the paused/running status (it owns the summary while it runs)."""


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (the system may have run out of memory)" if name == "SIGKILL" else ""
        return f"the training process was killed by {name}{hint}"
    return f"the training process exited with code {exitcode}"


def child_main(cfg: RunConfig, run_path: str, dataset: Dataset | None, resume: bool,
               emit_every: float, conn: Connection) -> None:
    """The child: train, steered by ``conn`` (pause, resume, stop); the server's end closing
    means it has gone, and the run ends ``interrupted`` with a checkpoint."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in a terminal: the server decides
    run = RunDir(Path(run_path))
    stop, running = StopRequest(), threading.Event()
    running.set()
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            try:
                conn.send(message)
            except OSError:
                pass

    def set_status(status: str) -> None:
        if run.summary().get("status") in LIVE:
            run.write_summary({"status": status})
        send(("event", {"type": "status", "status": status, "time": time.time()}))

    def listen() -> None:
        while True:
            try:
                verb, *args = conn.recv()
            except (EOFError, OSError):
                stop.set("interrupted", SHUTDOWN_REASON)
                running.set()
                return
            if verb == "stop":
                stop.set(*args)
                running.set()
            elif verb == "pause" and running.is_set():
                running.clear()
                set_status("paused")
            elif verb == "resume" and not running.is_set():
                running.set()
                set_status("running")

    def forward(event: dict[str, Any]) -> None:
        if event["type"] in FORWARDED:
            send(("event", event))

    signal.signal(signal.SIGTERM, lambda *_: stop.set("interrupted", "interrupted by SIGTERM"))
    threading.Thread(target=listen, name="steering", daemon=True).start()
    recorder = Recorder(run, listener=forward)
    with Heartbeat(run):
        result = execute(cfg, recorder, stop, lambda: hold(running, stop, recorder, POLL_S),
                         dataset, resume=resume, emit_every=emit_every)
    send(("result", result))


def make_process_runner(cfg: RunConfig, run: RunDir, dataset: Any, resume: bool,
                        on_exit: Any) -> ProcessRunner:
    """The scheduler's factory for runs in child processes."""
    return ProcessRunner(cfg, run, dataset, resume=resume, on_exit=on_exit)
