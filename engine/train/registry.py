"""The process-wide registry of runs: live runners by id over the run store on disk.

The UI keeps one of these (in ``st.cache_resource``); browser sessions keep only run ids.
"""

from __future__ import annotations

import threading

from engine.config import RunConfig, validate
from engine.data import Dataset
from engine.train.runner import Runner
from engine.train.store import RunDir, RunStore


class RunRegistry:
    """Starts runs in background threads and finds any run, live or on disk, by id."""

    def __init__(self, store: RunStore | None = None) -> None:
        self.store = store or RunStore()
        self._live: dict[str, Runner] = {}
        self._lock = threading.Lock()

    def start(self, cfg: RunConfig, dataset: Dataset | None = None) -> Runner:
        """Validate ``cfg`` (raises ``ValueError`` with a readable message) and start a run."""
        validate(cfg)
        runner = Runner(cfg, self.store, dataset)
        with self._lock:
            self._live[runner.id] = runner
        return runner.start()

    def live(self, run_id: str) -> Runner | None:
        with self._lock:
            return self._live.get(run_id)

    def active(self) -> list[Runner]:
        """Runners whose thread is still going."""
        with self._lock:
            return [r for r in self._live.values() if r.alive]

    def runs(self) -> list[RunDir]:
        return self.store.list()

    def run(self, run_id: str) -> RunDir:
        return self.store.get(run_id)

    def status(self, run_id: str) -> str:
        """running | paused | finished | stopped | failed | interrupted (died with its process)."""
        runner = self.live(run_id)
        if runner is not None and runner.alive:
            return "paused" if runner.paused else "running"
        status = self.store.get(run_id).summary().get("status", "unknown")
        return "interrupted" if status in ("running", "loading") else status

    def delete(self, run_id: str) -> None:
        runner = self.live(run_id)
        if runner is not None:
            runner.stop()
            with self._lock:
                self._live.pop(run_id, None)
        self.store.delete(run_id)

    def stop_all(self, timeout: float = 10.0) -> None:
        for runner in self.active():
            runner.stop(timeout)
