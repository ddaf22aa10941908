"""The process-wide registry of runs: admission, participants and live runs over the run store.

The UI keeps one of these (in ``st.cache_resource``); browser sessions keep only run ids and
say who they are with an :class:`Actor`. A submitted run is checked whole, written to disk as
"queued" (so every browser lists it) and started by the :class:`Scheduler` when a device slot
is free. A participant acts only on their own runs; the instructor on all.
"""

from __future__ import annotations

from typing import Any

from engine.config import RunConfig
from engine.data import Dataset
from engine.encoder.parent import parent_in
from engine.preflight import check_run
from engine.train.limits import Limits
from engine.train.participants import ANONYMOUS, Actor, may_act, refusal, token_matches
from engine.train.runner import Runner
from engine.train.scheduler import Job, RunnerFactory, Scheduler
from engine.train.store import LIVE, RunDir, RunStore, owner_fields

__all__ = ["Actor", "Limits", "RunHandle", "RunRegistry"]

#: disk statuses from which a run may go back in the queue
RESUMABLE = ("stopped", "interrupted")


def make_runner(cfg: RunConfig, run: RunDir, dataset: Any, resume: bool,
                on_exit: Any) -> Any:
    """The engine's own runner for one run (a background thread)."""
    return Runner(cfg, run, dataset, resume=resume, on_exit=on_exit)


class RunHandle:
    """A submitted run as the registry's old ``start`` returned it: ``id``, ``join``,
    ``stop``, ``alive`` (whether it is queued or running)."""

    def __init__(self, scheduler: Scheduler, job: Job) -> None:
        self._scheduler = scheduler
        self._job = job

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def run(self) -> RunDir:
        return self._job.run

    @property
    def alive(self) -> bool:
        return not self._job.done.is_set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the run has ended (queued time included)."""
        self._job.done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> bool:
        return self._scheduler.stop(self._job, timeout)


class RunRegistry:
    """Queues runs, starts them as devices free up, and finds any run, live or on disk."""

    def __init__(
        self,
        store: RunStore | None = None,
        limits: Limits | None = None,
        runner_factory: RunnerFactory | None = None,
        gpus: list[str] | None = None,
    ) -> None:
        self.store = store or RunStore()
        self.limits = limits or Limits.from_env()
        self.scheduler = Scheduler(self.limits, runner_factory or make_runner, gpus)

    # -- participants ------------------------------------------------------------------------
    def is_instructor(self, token: object) -> bool:
        """Whether ``token`` is the instructor's (``SSL_STUDIO_INSTRUCTOR_TOKEN`` when the
        server started); false for everyone when none was set."""
        return token_matches(token, self.limits.instructor_token)

    def owner(self, run_id: str) -> str:
        """The participant who owns a run ("" for none; "cli" for command-line runs)."""
        job = self.scheduler.job(run_id)
        if job is not None:
            return job.owner
        return str(self.store.get(run_id).summary().get("owner", ""))

    def may_act(self, actor: Actor, run_id: str) -> bool:
        """Whether ``actor`` may stop, pause, delete or resume the run."""
        return may_act(actor, self.owner(run_id))

    def _check(self, actor: Actor, run_id: str, verb: str) -> None:
        owner = self.owner(run_id)
        if not may_act(actor, owner):
            raise refusal(run_id, owner, verb)

    # -- submitting --------------------------------------------------------------------------
    def submit(self, cfg: RunConfig, actor: Actor, dataset: Dataset | None = None) -> str:
        """Check the whole run, write it to disk as queued under ``actor``'s name and queue it;
        it starts at once when a slot is free. ``ValueError`` (a run that would fail) or
        ``PermissionError`` (too many queued runs), one line each; nothing is written then.
        A run id in ``model.init_from`` is looked up in this registry's runs folder."""
        cfg = parent_in(cfg, self.store)
        check_run(cfg, dataset)
        job = self.scheduler.submit(
            cfg, actor.name, lambda: self.store.create(cfg, owner=actor.name, status="queued"),
            dataset, capped=not actor.instructor)
        return job.id

    def start(self, cfg: RunConfig, dataset: Dataset | None = None) -> RunHandle:
        """Submit as an anonymous participant (the form callers used before participants)."""
        run_id = self.submit(cfg, ANONYMOUS, dataset)
        job = self.scheduler.job(run_id)
        if job is None:  # it ended already; a handle that has nothing to wait for
            job = Job(run=self.store.get(run_id), cfg=cfg, owner="", state="ended")
            job.done.set()
        return RunHandle(self.scheduler, job)

    def resume(self, run_id: str, actor: Actor) -> str:
        """Put a stopped or interrupted run that has a checkpoint back in the queue; it goes on
        in the same directory. ``ValueError`` when it cannot be resumed (or would fail)."""
        self._check(actor, run_id, "resume")
        run = self.store.get(run_id)
        status = self.status(run_id)
        resumable = run.summary().get("resumable") or run.checkpoint_path() is not None
        if status not in RESUMABLE or not resumable:
            raise ValueError(f"run {run_id} is {status} and cannot be resumed: only a stopped "
                             "or interrupted run with a checkpoint can")
        cfg = run.config()
        check_run(cfg)  # its data may have gone since it first ran

        def requeue() -> RunDir:
            run.write_summary({"status": "queued", "resumable": False, **owner_fields()},
                              drop=("reason", "error", "ended"))
            return run

        self.scheduler.submit(cfg, self.owner(run_id), requeue, resume=True,
                              capped=not actor.instructor, run_id=run_id)
        return run_id

    # -- acting on runs ----------------------------------------------------------------------
    def stop(self, run_id: str, actor: Actor = ANONYMOUS, timeout: float = 10.0) -> bool:
        """Stop a running run or cancel a queued one ("stopped", "cancelled while queued").
        True once it has ended; False for a run another process is training."""
        self._check(actor, run_id, "stop")
        job = self.scheduler.job(run_id)
        if job is None:
            return self.status(run_id) not in LIVE
        return self.scheduler.stop(job, timeout)

    cancel = stop

    def pause(self, run_id: str, actor: Actor = ANONYMOUS) -> None:
        """Hold a running run (it keeps its slot); ``ValueError`` when it is not running."""
        self._check(actor, run_id, "pause")
        self._runner_of(run_id, "pause").pause()

    def unpause(self, run_id: str, actor: Actor = ANONYMOUS) -> None:
        """Let a paused run go on."""
        self._check(actor, run_id, "unpause")
        self._runner_of(run_id, "unpause").resume()

    def _runner_of(self, run_id: str, verb: str) -> Any:
        job = self.scheduler.job(run_id)
        runner = job.runner if job is not None else None
        if runner is None or not runner.alive:
            raise ValueError(f"cannot {verb} run {run_id}: it is {self.status(run_id)}")
        return runner

    def delete(self, run_id: str, actor: Actor = ANONYMOUS, timeout: float = 10.0) -> None:
        """Stop the run if it is going, then delete its directory."""
        self._check(actor, run_id, "delete")
        job = self.scheduler.job(run_id)
        if job is not None and not self.scheduler.stop(job, timeout):
            raise RuntimeError(f"run {run_id} did not stop within {timeout:g} s; "
                               "try deleting it again")
        self.store.delete(run_id)

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every running run and cancel the queue (at shutdown)."""
        self.scheduler.stop_all(timeout)

    # -- reading -----------------------------------------------------------------------------
    def queue_position(self, run_id: str) -> int | None:
        """1 for the next run to start; None when the run is not queued."""
        job = self.scheduler.job(run_id)
        return None if job is None else self.scheduler.position(job)

    def estimated_start(self, run_id: str) -> float | None:
        """When a queued run should start (unix time); None when not queued or unknown."""
        job = self.scheduler.job(run_id)
        return None if job is None else self.scheduler.estimated_start(job)

    def queue(self) -> list[str]:
        """Ids of the queued runs, next first."""
        return [j.id for j in self.scheduler.jobs() if j.state == "queued"]

    def live(self, run_id: str) -> Any:
        """The runner of a started run of this process (None when queued or ended)."""
        job = self.scheduler.job(run_id)
        return None if job is None else job.runner

    def active(self) -> list[Any]:
        """Runners whose thread is still going."""
        return [j.runner for j in self.scheduler.jobs()
                if j.runner is not None and j.runner.alive]

    def runs(self) -> list[RunDir]:
        return self.store.list()

    def run(self, run_id: str) -> RunDir:
        return self.store.get(run_id)

    def status(self, run_id: str) -> str:
        """queued | loading | running | paused for runs of this process; otherwise what the
        run directory says (finished, stopped, failed, or interrupted when its process died)."""
        job = self.scheduler.job(run_id)
        if job is not None:
            phase = self.scheduler.phase(job)
            if phase != "ended":
                return phase
        return self.store.get(run_id).status()

