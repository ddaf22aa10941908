"""A run on every GPU of this machine, started from the app: torchrun as a child process.

The launcher makes the run directory (status ``queued``, the config it will train), starts
``python -m torch.distributed.run --standalone --nproc-per-node N -m engine train`` with
:data:`~engine.train.distributed_run.RUN_DIR_ENV` naming that directory, and from then on
follows the run as the app follows any run: through the directory, which rank 0 writes
(:mod:`engine.train.distributed_run`). torchrun's own output goes to ``torchrun.log`` in the
directory (it names a process that failed and why).

Stopping is clean: :meth:`Launch.stop` writes the run's stop file; rank 0 sees it before the
next step, every process stops there, rank 0 writes the final checkpoint and ``stopped``, and
torchrun exits. Only if that does not happen in time is torchrun sent SIGTERM (the run ends
``interrupted``, resumable), then SIGKILL, torchrun and each of its workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from engine.config import RunConfig
from engine.train.distributed_run import RUN_DIR_ENV, request_stop
from engine.train.store import LIVE, RunDir, RunStore

#: torchrun's output, in the run directory
LOG = "torchrun.log"


def gpu_count() -> int:
    """CUDA GPUs visible to this process (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def command(run: RunDir, nproc: int) -> list[str]:
    """The torchrun command line that trains ``run`` (its config.json) on ``nproc`` processes
    of this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "engine", "train",
            "--config", str(run.path / "config.json"), "--runs-dir", str(run.path.parent),
            "--quiet"]


@dataclass
class Launch:
    """A torchrun job training one run; the run directory says how it goes."""

    run: RunDir
    process: subprocess.Popen

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def settle(self) -> str:
        """The run's status; a job that ended before rank 0 wrote an end gets ``failed`` with
        the reason written down (torchrun could not start, or rank 0 died)."""
        status = self.run.summary().get("status")
        if not self.alive and status in LIVE:
            self.run.write_summary({
                "status": "failed", "ended": time.time(), "resumable": False,
                "reason": f"torchrun ended with status {self.process.returncode} before the run "
                          f"did; its output is in {self.run.path / LOG}",
            })
            return "failed"
        return self.run.status()

    def stop(self, timeout: float = 60.0) -> bool:
        """Ask the run to stop before its next step and wait up to ``timeout`` s for torchrun
        to exit; then SIGTERM (``interrupted``), then SIGKILL. True when it ended in time."""
        if self.alive:
            request_stop(self.run)
        try:
            self.process.wait(timeout)
            clean = True
        except subprocess.TimeoutExpired:
            clean = False
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.settle()
        return clean

    def kill(self) -> None:
        """SIGKILL torchrun and every process it started, at once: nothing of the job goes on
        training (the run reads ``interrupted``, or ``failed`` once settled)."""
        self._signal(signal.SIGKILL)
        self.process.wait()

    def wait(self, timeout: float | None = None) -> int:
        """torchrun's exit status, waiting up to ``timeout`` s."""
        code = self.process.wait(timeout)
        self.settle()
        return code

    def _signal(self, sig: int) -> None:
        """``sig`` to torchrun's process group and to each worker's: torchrun starts every
        worker in a session of its own, so a worker outlives a SIGKILL of torchrun's group
        alone (SIGTERM torchrun passes on itself)."""
        for group in (self.process.pid, *children(self.process.pid)):
            try:
                os.killpg(group, sig)
            except (ProcessLookupError, PermissionError):
                pass


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from ``/proc``; none where there is no such
    folder)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry.name))
    return found


def launch(
    cfg: RunConfig, store: RunStore, nproc: int | None = None, owner: str = "",
    env: dict[str, str] | None = None,
) -> Launch:
    """Start ``cfg`` on ``nproc`` processes (default: one per GPU of this machine).

    ``ValueError`` for fewer than 2 (one GPU trains in the app's own runner)."""
    nproc = gpu_count() if nproc is None else nproc
    if nproc < 2:
        raise ValueError(f"training on all GPUs needs at least 2 processes; this machine has "
                         f"{gpu_count()} GPU(s)")
    run = store.create(cfg, owner=owner, status="queued")
    threads = max(1, (os.cpu_count() or 1) // nproc)
    child_env = {**os.environ, "OMP_NUM_THREADS": str(threads), **(env or {}),
                 RUN_DIR_ENV: str(run.path)}
    with open(run.path / LOG, "ab") as log:
        process = subprocess.Popen(command(run, nproc), env=child_env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=Path(__file__).resolve().parents[2])
    return Launch(run, process)
