"""One run trained by several processes (``torchrun ... -m engine train``), on disk a normal run.

Every process builds the same :class:`~engine.train.loop.Trainer` and iterates its events;
rank 0 alone records them (config, metrics, snapshots, checkpoints, summary with its pid and
heartbeat), so the run directory is what a one-process run writes, and the app follows it as
it follows any run. The other processes print nothing and write nothing.

How a distributed run ends:

- finished or stopped: rank 0 decides, every process takes the same number of steps
  (:meth:`engine.distributed.Context.agree`). A stop is asked for by SIGINT/SIGTERM to the
  processes (an ``interrupted`` run, resumable) or by the file ``stop_requested`` in the run
  directory (``stopped``; the app's launcher writes it, :mod:`engine.train.launch`);
- a process dies (killed, out of memory, a crash): the collective the others wait in fails, or
  torchrun ends them; rank 0 records the run ``failed`` with the reason. If rank 0 itself dies
  nobody writes the end: its heartbeat stops and readers see the run ``interrupted``.

Resuming (``torchrun ... -m engine resume RUN``) works with any number of processes, one
included: checkpoints hold the method without DDP's wrapper and the global data order. Every
process reads the checkpoint, so on several machines the runs directory must be shared.

``SSL_STUDIO_RUN_DIR``: when set, rank 0 records into that existing run directory (made by
the launcher, with the config it was given) instead of making a new one.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from engine import distributed
from engine.config import RunConfig
from engine.data import Dataset
from engine.train import checkpoint
from engine.train.events import FailedEvent, StatusEvent
from engine.train.loop import Trainer
from engine.train.recorder import Heartbeat, Recorder, StopRequest, explain
from engine.train.runner import check_resumable
from engine.train.store import RunDir, RunStore, owner_fields

#: a file in the run directory that asks a distributed run to stop (the launcher writes it)
STOP_FILE = "stop_requested"
#: the environment variable naming an existing run directory for rank 0 to record into
RUN_DIR_ENV = "SSL_STUDIO_RUN_DIR"
#: seconds between looks for :data:`STOP_FILE`
STOP_POLL_S = 0.5


def request_stop(run: RunDir) -> None:
    """Ask a distributed run to stop before its next step (any process may; rank 0 reads it)."""
    (run.path / STOP_FILE).touch()


class _StopFile:
    """``should_stop`` of rank 0: a signal (:class:`StopRequest`) or the run's stop file."""

    def __init__(self, run: RunDir, stop: StopRequest) -> None:
        self.path = run.path / STOP_FILE
        self.stop = stop
        self._last = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.stop() and now - self._last >= STOP_POLL_S:
            self._last = now
            if self.path.exists():
                self.stop.set("stopped", "stopped by the user")
        return self.stop()


@contextmanager
def _signals(stop: StopRequest) -> Iterator[None]:
    """SIGTERM/SIGINT ask for an interruption at the next step instead of ending the process."""

    def handler(signum: int, frame: Any) -> None:
        stop.set("interrupted", f"interrupted by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _lost_process(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a collective whose other side has gone."""
    if isinstance(exc, torch.distributed.DistError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("gloo", "nccl", "connection closed", "connection reset", "broken pipe")
    )


def reason(exc: BaseException, ctx: distributed.Context) -> str:
    """The failure of a distributed run in words a person can act on."""
    if _lost_process(exc):
        return (f"a process of this {ctx.world}-process run ended or stopped answering, so the "
                f"run cannot go on (torchrun's output names it and why): {explain(exc)}")
    return explain(exc)


def _drive(
    cfg: RunConfig, ctx: distributed.Context, record: Callable[[dict[str, Any]], None],
    should_stop: Callable[[], bool], dataset: Dataset | None, state: dict[str, Any] | None,
    stop: StopRequest | None = None,
) -> dict[str, Any]:
    """Build the trainer (restored from ``state``) and hand every event to ``record``."""
    record(StatusEvent(type="status", status="loading", message="loading data"))
    trainer = Trainer(cfg, dataset)
    if state is not None:
        trainer.restore(state)
        # the checkpoint holds rank 0's augmentation generator; the others draw afresh
        if not ctx.main:
            trainer.generator.manual_seed(distributed.rank_seed(cfg.seed) + trainer.step)
    last: dict[str, Any] = {}
    for event in trainer.events(should_stop):
        if event["type"] == "finished" and event["status"] == "stopped" and stop is not None:
            event = {**event, "status": stop.status, "reason": stop.reason}
        record(event)
        last = event
    return last


def _rank0(
    cfg: RunConfig, ctx: distributed.Context, run: RunDir,
    on_event: Callable[[dict[str, Any]], None] | None, dataset: Dataset | None,
    state: dict[str, Any] | None,
) -> dict[str, Any]:
    recorder = Recorder(run, listener=on_event)
    stop = StopRequest()
    with _signals(stop), Heartbeat(run):
        run.write_summary({"processes": ctx.world, **owner_fields()})
        try:
            if state is not None:
                (run.path / STOP_FILE).unlink(missing_ok=True)  # the stop that ended it before
                run.truncate_metrics(int(state["step"]))
                recorder(StatusEvent(type="status", status="resumed", step=int(state["step"])))
            return _drive(cfg, ctx, recorder, _StopFile(run, stop), dataset, state, stop)
        except Exception as exc:  # noqa: BLE001 — every failure becomes a failed run
            event = FailedEvent(type="failed", error=reason(exc, ctx),
                                traceback=traceback.format_exc(limit=8))
            try:
                recorder(event)
            except OSError:
                pass
            return event


def _follower(cfg: RunConfig, ctx: distributed.Context, dataset: Dataset | None,
              state: dict[str, Any] | None) -> None:
    """Ranks 1..N-1: train, write nothing; signals are left to rank 0's decision."""
    stop = StopRequest()  # caught and ignored here: rank 0 ends every process
    with _signals(stop):
        _drive(cfg, ctx, lambda event: None, lambda: False, dataset, state)


def train(
    cfg: RunConfig, runs_dir: str | None, on_event: Callable[[dict[str, Any]], None] | None,
    dataset: Dataset | None = None, resume_id: str | None = None,
    prepare: Callable[[RunConfig], Dataset] | None = None,
) -> int:
    """Train ``cfg`` as this process's part of a torchrun job (``resume_id``: continue that
    run from its checkpoint); the exit status (rank 0: 1 when the run failed).

    ``prepare(cfg)``: checks the run and loads its data (the CLI's); rank 0 calls it first,
    the others once it is done, so a download or a decoded cache is made once."""
    ctx = distributed.init_from_env(cfg.train.device)
    try:
        if prepare is not None:
            if ctx.main:
                dataset = prepare(cfg)
            torch.distributed.barrier()
            if not ctx.main:
                dataset = prepare(cfg)
        store = RunStore(runs_dir)
        state = None
        if resume_id is not None:
            run = store.get(resume_id)
            check_resumable(run)  # every process, before rank 0 marks it live again
            state = checkpoint.load(run.checkpoint_path())
            torch.distributed.barrier()
        if not ctx.main:
            _follower(cfg, ctx, dataset, state)
            distributed.farewell()
            return 0
        if resume_id is not None:
            run.write_summary({"status": "loading", **owner_fields()},
                              drop=("reason", "error", "ended", "resumable"))
        elif os.environ.get(RUN_DIR_ENV):
            run = RunDir(Path(os.environ[RUN_DIR_ENV]))
            run.write_summary({"status": "loading", **owner_fields()})
        else:
            run = store.create(cfg, owner="torchrun", status="loading")
        last = _rank0(cfg, ctx, run, on_event, dataset, state)
        if last.get("type") == "finished":  # the others passed the last step's decision
            distributed.farewell()
        from engine.cli import report

        return report(run, last)
    except Exception as exc:
        if not ctx.main:  # torchrun shows it and ends the others; rank 0 records the failure
            print(f"rank {ctx.rank}: {reason(exc, ctx)}", file=sys.stderr)
            return 1
        raise
    finally:
        distributed.shutdown()
