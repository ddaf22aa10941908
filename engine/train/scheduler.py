"""Admission control: a limit of concurrent runs per device, and a first-in first-out queue.

A run waits in the queue until one of the devices it may use has a free slot (by default one
run on the CPU, two per GPU); it then starts on the least busy of them. When a run ends (its
runner calls back) the next one starts. The scheduler also says where a queued run stands
(its position, an estimate of its start) and keeps the heartbeat of queued runs fresh, so
other processes do not take them for orphans.

One lock guards the queue and the live jobs; it is never held while a thread is joined or a
file is written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from engine.config import RunConfig, validate
from engine.train.estimate import budget, remaining, start_after
from engine.train.limits import Limits
from engine.train.store import RunDir

#: makes the runner of one run: (cfg, run, dataset, resume, on_exit) -> an object with
#: start(), stop(timeout) -> bool, pause(), resume(), alive, paused and log (an EventLog)
RunnerFactory = Callable[[RunConfig, RunDir, Any, bool, Callable[[Any], None]], Any]

#: seconds between heartbeats of queued runs (readers call a run older than 30 s an orphan)
HEARTBEAT_SECONDS = 5.0


def gpu_devices() -> list[str]:
    """The CUDA devices runs are placed on: ``["cuda:0", "cuda:1", ...]`` for several GPUs,
    ``["cuda"]`` for one (or for several while a config cannot name one GPU: every run then
    takes the current device, so they share one device's slots), none without CUDA."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n > 1 and not names_a_gpu():
        n = 1
    return ["cuda"] if n == 1 else [f"cuda:{i}" for i in range(n)]


def names_a_gpu() -> bool:
    """Whether ``train.device`` may name one GPU (``cuda:1``)."""
    probe = RunConfig()
    try:
        validate(replace(probe, train=replace(probe.train, device="cuda:1")))
    except ValueError:
        return False
    return True


def place(cfg: RunConfig, device: str, gpus: list[str]) -> RunConfig:
    """``cfg`` with ``train.device`` set to the GPU the scheduler chose, when there are several
    and the run left the choice open (auto or cuda). Unchanged when the config cannot name
    that device (the run then takes the current CUDA device)."""
    if len(gpus) < 2 or device not in gpus or cfg.train.device not in ("auto", "cuda"):
        return cfg
    placed = replace(cfg, train=replace(cfg.train, device=device))
    try:
        validate(placed)
    except ValueError:
        return cfg
    return placed


@dataclass(eq=False)
class Job:
    """One run in the scheduler's hands: queued, starting, running, then ended."""

    run: RunDir
    cfg: RunConfig
    owner: str
    dataset: Any = None
    resume: bool = False
    state: str = "queued"  # queued | starting | running | ended
    device: str = ""
    runner: Any = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    stop_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    cursor: int = 0  # how far the runner's event log has been read
    trained_since: float | None = None  # time of the runner's "start" event
    last_step: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return self.run.id


class Scheduler:
    """Starts jobs as device slots free up; the queue is first in, first out per device."""

    def __init__(
        self,
        limits: Limits,
        factory: RunnerFactory,
        gpus: list[str] | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.limits = limits
        self.gpus = gpu_devices() if gpus is None else list(gpus)
        self.capacity = {"cpu": limits.max_runs_cpu}
        self.capacity.update({g: limits.max_runs_per_gpu for g in self.gpus})
        self._factory = factory
        self.heartbeat_seconds = heartbeat_seconds
        self._lock = threading.Lock()
        self._queue: list[Job] = []
        self._jobs: dict[str, Job] = {}  # queued, starting and running jobs by run id
        self._reserved: dict[str, int] = {}  # submissions between the cap check and the queue
        self._claimed: set[str] = set()  # runs going back in the queue, being rewritten
        self._closing = False
        self._beat: tuple[threading.Thread, threading.Event] | None = None

    # -- where a run may go ------------------------------------------------------------------
    def candidates(self, cfg: RunConfig) -> list[str]:
        """The devices a run may take a slot on: the GPUs for auto or cuda (the one GPU it
        names, if any), the CPU's slots for cpu, mps, or a machine without CUDA."""
        wanted = cfg.train.device
        if wanted in ("cpu", "mps") or not self.gpus:
            return ["cpu"]
        return [wanted] if wanted in self.gpus else list(self.gpus)

    def _busy(self) -> dict[str, int]:
        busy = dict.fromkeys(self.capacity, 0)
        for job in self._jobs.values():
            if job.state in ("starting", "running"):
                busy[job.device] = busy.get(job.device, 0) + 1
        return busy

    def _pick(self) -> list[Job]:
        """Move the jobs that fit now from the queue to "starting" (lock held)."""
        if self._closing:
            return []
        busy, picks = self._busy(), []
        order = list(self.capacity)
        for job in list(self._queue):
            free = [d for d in self.candidates(job.cfg) if busy.get(d, 0) < self.capacity.get(d, 0)]
            if not free:
                continue
            device = min(free, key=lambda d: (busy[d], order.index(d)))
            busy[device] += 1
            job.state, job.device = "starting", device
            self._queue.remove(job)
            picks.append(job)
        return picks

    # -- submitting --------------------------------------------------------------------------
    def submit(
        self,
        cfg: RunConfig,
        owner: str,
        make_run: Callable[[], RunDir],
        dataset: Any = None,
        resume: bool = False,
        capped: bool = True,
        run_id: str = "",
    ) -> Job:
        """Queue a run made by ``make_run`` (called without the lock, only once the owner is
        within the cap) and start it if a slot is free. ``PermissionError`` past the cap;
        ``ValueError`` when ``run_id`` (a run going back in the queue) is already here."""
        with self._lock:
            if run_id and (run_id in self._jobs or run_id in self._claimed):
                raise ValueError(f"run {run_id} is already queued or running")
            if capped:
                waiting = self._reserved.get(owner, 0) + sum(
                    1 for j in self._queue if j.owner == owner)
                if waiting >= self.limits.max_queued:
                    who = f"{owner} has" if owner else "anonymous participants have"
                    raise PermissionError(
                        f"{who} {waiting} run(s) waiting in the queue already (at most "
                        f"{self.limits.max_queued} each): wait for one to start, or cancel one")
            self._reserved[owner] = self._reserved.get(owner, 0) + 1
            if run_id:
                self._claimed.add(run_id)
        try:
            run = make_run()
        except BaseException:
            with self._lock:
                self._unreserve(owner, run_id)
            raise
        job = Job(run=run, cfg=cfg, owner=owner, dataset=dataset, resume=resume)
        with self._lock:
            self._unreserve(owner, run_id)
            self._queue.append(job)
            self._jobs[job.id] = job
            self._ensure_heartbeat()
        self._dispatch()
        return job

    def _unreserve(self, owner: str, run_id: str) -> None:
        self._claimed.discard(run_id)
        self._reserved[owner] -= 1
        if not self._reserved[owner]:
            del self._reserved[owner]

    def _dispatch(self) -> None:
        """Drop jobs whose runner died without calling back, then start whatever fits."""
        with self._lock:
            dead = [j for j in self._jobs.values() if j.state == "running"
                    and j.runner is not None and not j.runner.alive]
            for job in dead:
                self._drop(job)
            picks = self._pick()
        for job in dead:
            job.done.set()
        for job in picks:
            self._launch(job)

    def _launch(self, job: Job) -> None:
        cfg = place(job.cfg, job.device, self.gpus)
        try:
            runner = self._factory(cfg, job.run, job.dataset, job.resume,
                                   lambda _runner: self._ended(job))
            with self._lock:
                job.runner, job.started = runner, time.time()
            runner.start()
        except Exception as exc:  # noqa: BLE001 — the run fails with its reason, the queue goes on
            try:
                job.run.write_summary({"status": "failed", "ended": time.time(),
                                       "error": str(exc) or type(exc).__name__})
            except OSError:
                pass
            self._ended(job)
            return
        with self._lock:
            if job.state == "starting":
                job.state = "running"
            stop = job.stop_requested and job.state == "running"
        if stop:
            runner.stop(0)

    def _drop(self, job: Job) -> None:
        """Forget an ended job (lock held): its thread, model and data are not kept."""
        job.state = "ended"
        self._jobs.pop(job.id, None)
        if job in self._queue:
            self._queue.remove(job)
        job.runner = job.dataset = None

    def _ended(self, job: Job) -> None:
        """The runner's exit callback: free the slot and start the next run."""
        with self._lock:
            if job.state == "ended":
                return
            self._drop(job)
        job.done.set()
        self._dispatch()

    # -- acting on jobs ----------------------------------------------------------------------
    def job(self, run_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)

    def jobs(self) -> list[Job]:
        """Live jobs: the running ones, then the queue in order."""
        with self._lock:
            return [j for j in self._jobs.values() if j.state != "queued"] + list(self._queue)

    def cancel(self, job: Job) -> bool:
        """Take a queued job out of the queue; its run ends "stopped". False if it had left."""
        with self._lock:
            if job.state != "queued":
                return False
            self._drop(job)
        try:
            job.run.write_summary({
                "status": "stopped", "reason": "cancelled while queued",
                "ended": time.time(), "resumable": job.run.checkpoint_path() is not None})
        except OSError:
            pass
        job.done.set()
        return True

    def stop(self, job: Job, timeout: float = 10.0) -> bool:
        """Cancel a queued job or stop a running one; True once it has ended."""
        if self.cancel(job):
            return True
        with self._lock:
            job.stop_requested = True
            runner = job.runner if job.state == "running" else None
        if runner is not None:
            runner.stop(timeout)
        return job.done.wait(timeout)

    def stop_all(self, timeout: float = 10.0) -> None:
        """Cancel the queue and stop every running job (at shutdown); ends the heartbeat."""
        with self._lock:
            self._closing = True
        try:
            for _ in range(2):  # again for anything submitted meanwhile
                for job in self.jobs():
                    if job.state == "queued":
                        self.cancel(job)
                with self._lock:
                    for job in self._jobs.values():
                        job.stop_requested = True
                    runners = [j.runner for j in self._jobs.values() if j.runner is not None]
                for runner in runners:  # ask them all first, then wait for each
                    runner.stop(0)
                for job in self.jobs():
                    self.stop(job, timeout)
        finally:
            with self._lock:
                self._closing = False
                beat = self._beat  # also one that has just decided to end: join it too
            if beat is not None:
                beat[1].set()
                beat[0].join(timeout)

    # -- where a queued run stands -----------------------------------------------------------
    def _observe(self, job: Job) -> None:
        """Catch up on the runner's events (lock held; an in-memory read)."""
        log = getattr(job.runner, "log", None)
        if log is None:
            return
        events, job.cursor = log.read(job.cursor)
        for event in events:
            kind = event.get("type")
            if kind == "start" or (kind == "step" and job.trained_since is None):
                job.trained_since = float(event.get("time", time.time()))
            if kind == "step":
                job.last_step = event

    def phase(self, job: Job) -> str:
        """queued | loading | running | paused | ended."""
        with self._lock:
            if job.state in ("queued", "ended"):
                return job.state
            if job.state == "starting" or job.runner is None:
                return "loading"
            self._observe(job)
            if job.runner.paused:
                return "paused"
            return "running" if job.trained_since is not None else "loading"

    def _ahead(self, job: Job) -> list[Job]:
        pool = set(self.candidates(job.cfg))
        i = self._queue.index(job)
        return [j for j in self._queue[:i] if pool & set(self.candidates(j.cfg))]

    def position(self, job: Job) -> int | None:
        """1 for the next run to start on its devices; None when it is not queued."""
        with self._lock:
            return len(self._ahead(job)) + 1 if job.state == "queued" else None

    def estimated_start(self, job: Job, now: float | None = None) -> float | None:
        """When a queued run should start (unix time): the runs on its devices finish their
        budgets, then those ahead of it in the queue run theirs. None when it is not queued
        or a run it waits for has no time budget and no pace yet."""
        now = time.time() if now is None else now
        with self._lock:
            if job.state != "queued":
                return None
            pool = set(self.candidates(job.cfg))
            slots = sum(self.capacity.get(d, 0) for d in pool)
            started = [j for j in self._jobs.values()
                       if j.state in ("starting", "running") and j.device in pool]
            for j in started:
                self._observe(j)
            left = [remaining(j.cfg, j.last_step, j.trained_since or j.started or now, now)
                    for j in started]
            ahead = [budget(j.cfg) for j in self._ahead(job)]
        seconds = start_after(left + [0.0] * max(0, slots - len(left)), ahead)
        return None if seconds is None else now + seconds

    # -- heartbeat of queued runs ------------------------------------------------------------
    def _ensure_heartbeat(self) -> None:
        """Start the heartbeat thread if none is going (lock held)."""
        if self._beat is None or self._beat[1].is_set():  # none, or one that has decided to end
            stop = threading.Event()
            thread = threading.Thread(target=self._beat_queued, args=(stop,), daemon=True,
                                      name="queue-heartbeat")
            self._beat = (thread, stop)
            thread.start()

    def _beat_queued(self, stop: threading.Event) -> None:
        """Refresh the heartbeat of every queued run until the queue is empty."""
        me = threading.current_thread()
        while not stop.wait(self.heartbeat_seconds):
            with self._lock:
                if self._beat is None or self._beat[0] is not me:
                    return
                queued = list(self._queue)
                if not queued:
                    stop.set()  # under the lock: a new queued run starts a new thread
                    return
            for job in queued:
                if job.state != "queued":
                    continue
                try:
                    job.run.beat()  # writes nothing once the run has left the queue
                except OSError:
                    pass
