"""Crash-safe runs: exact resume from a checkpoint, kill -9 and SIGTERM of command-line runs,
shutdown of a process with background runs, prompt stops, and the one progress clock.

Resume exactness: a run stopped after ``k`` steps and resumed from its checkpoint gives, at
every later step, the same per-step loss as an uninterrupted run with the same seed, within
``rtol=1e-4`` (on the CPU both are bit-for-bit the same computation; the tolerance only
allows for a different summation order).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from engine.config import RunConfig
from engine.data import load_dataset
from engine.methods.ema import cosine_momentum
from engine.train import checkpoint as ckpt
from engine.train.loop import Trainer
from engine.train.runner import Runner
from engine.train.store import RunStore
from tests.fixtures.tiny_runs import TINIER

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    **TINIER,
    "train.max_seconds": 0,
    "train.device": "cpu",
    "eval.knn_train_size": 128,
    "eval.snapshot_size": 32,
    "eval.every_seconds": 1000,
    "eval.diagnostics_every_steps": 0,
    "eval.linear_probe": False,
}


def tiny(**overrides) -> RunConfig:
    return RunConfig().with_overrides({**TINY, **overrides})


def losses_of(events) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events if e["type"] == "step"}


@pytest.mark.parametrize(("method", "params"), [
    ("simclr", {}),
    ("byol", {}),  # EMA target and its momentum
    ("moco", {"method.queue_size": 96}),  # key encoder and a queue that wraps around
])
def test_a_resumed_run_continues_exactly(method, params):
    """Stopped after 11 of 24 steps (mid-epoch, 8 steps an epoch), saved, loaded, resumed:
    steps 12..24 have the uninterrupted run's losses (rtol 1e-4)."""
    cfg = tiny(**{"method.name": method, "train.epochs": 3, **params})
    ds = load_dataset(cfg.data)
    full = losses_of(Trainer(cfg, ds, emit_every=0).events())
    assert sorted(full) == list(range(1, 25))

    first = Trainer(cfg, ds, emit_every=0)
    events = list(first.events(lambda: first.step >= 11))
    assert events[-1]["status"] == "stopped" and events[-1]["steps"] == 11
    state = [e["state"] for e in events if e["type"] == "checkpoint"][-1]
    buf = io.BytesIO()
    torch.save(state, buf)  # through bytes, as on disk
    buf.seek(0)
    state = torch.load(buf, weights_only=False)
    assert state["step"] == 11 and state["format"] == ckpt.FORMAT

    torch.manual_seed(1234)  # the global RNG comes from the checkpoint, not from here
    second = Trainer(cfg, ds, emit_every=0)
    second.restore(state)
    resumed = list(second.events())
    assert resumed[0]["type"] == "start" and resumed[0]["resumed_from"] == 11
    assert resumed[-1]["status"] == "finished" and resumed[-1]["steps"] == 24
    after = losses_of(resumed)
    assert sorted(after) == list(range(12, 25))
    for step, loss in after.items():
        assert loss == pytest.approx(full[step], rel=1e-4), (method, step)


def cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT,
                            env={**os.environ, **(env or {})}, **kw)


def cli_sets(cfg: dict) -> list[str]:
    out = []
    for key, value in cfg.items():
        out += ["--set", f"{key}={json.dumps(value)}"]
    return out


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s")


def only_run(store: RunStore):
    runs = store.list()
    return runs[0] if len(runs) == 1 else None


def cli_train(runs: Path, overrides: dict, stderr: int) -> tuple[subprocess.Popen, RunStore]:
    """``python -m engine train`` of the TINY run with ``overrides``, in the background."""
    proc = cli("train", "--quiet", "--runs-dir", str(runs), *cli_sets({**TINY, **overrides}),
               stdout=subprocess.DEVNULL, stderr=stderr)
    return proc, RunStore(runs)


def test_kill_9_then_reconcile_then_resume_to_the_end(tmp_path):
    runs = tmp_path / "runs"
    proc, store = cli_train(runs, {"train.epochs": 20, "train.checkpoint_every_seconds": 0.3},
                            subprocess.DEVNULL)
    try:
        wait_for(lambda: (r := only_run(store)) is not None and r.checkpoint_path() is not None,
                 120, "checkpoint")
    finally:
        proc.kill()  # SIGKILL: nothing of the process runs after this
        proc.wait()
    run = only_run(store)
    assert run.summary()["status"] in ("running", "loading")
    assert run.status() == "interrupted"
    assert store.reconcile() == [run.id]
    summary = run.summary()
    assert summary["status"] == "interrupted" and summary["resumable"] is True
    saved = torch.load(run.checkpoint_path(), weights_only=False)["step"]
    assert 0 < saved < 160

    done = subprocess.run([sys.executable, "-m", "engine", "resume", run.id, "--quiet",
                           "--runs-dir", str(runs)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    summary = run.summary()
    assert summary["status"] == "finished" and summary["steps"] == 20 * 8
    events = run.metrics()
    steps = [e["step"] for e in events if e["type"] == "step"]
    assert steps == sorted(set(steps)), "the curve goes back or repeats a step"
    seam = next(i for i, e in enumerate(events) if e.get("status") == "resumed")
    assert events[seam]["step"] == saved
    after = [e["step"] for e in events[seam:] if e["type"] == "step"]
    assert after[0] > saved and after[-1] == 160
    assert [e["type"] for e in events].count("finished") == 1

    again = subprocess.run([sys.executable, "-m", "engine", "resume", run.id,
                            "--runs-dir", str(runs)], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 2 and "finished" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_resume_refuses_bad_ids_and_runs_without_checkpoint(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny(), status="stopped")
    for run_id in ("..", "nope", run.id):
        out = subprocess.run([sys.executable, "-m", "engine", "resume", run_id,
                              "--runs-dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                             text=True)
        assert out.returncode == 2, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "no checkpoint" in out.stderr


def test_sigterm_of_a_cli_run_saves_and_marks_it_interrupted(tmp_path):
    runs = tmp_path / "runs"
    proc, store = cli_train(runs, {"train.epochs": 1000, "train.checkpoint_every_seconds": 0},
                            subprocess.PIPE)
    try:
        wait_for(lambda: (r := only_run(store)) is not None and r.metrics("step"), 120,
                 "step")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    run = only_run(store)
    summary = run.summary()
    assert summary["status"] == "interrupted" and "SIGTERM" in summary["reason"]
    assert summary["resumable"] is True and run.status() == "interrupted"
    state = torch.load(run.checkpoint_path(), weights_only=False)
    assert state["step"] == summary["steps"] > 0
    assert f"engine resume {run.id}" in err.decode()


SERVER = textwrap.dedent("""
    import threading, time
    from engine.config import RunConfig
    from engine.train.runner import Runner, install_shutdown
    from engine.train.store import RunStore

    cfg = RunConfig().with_overrides({cfg!r})
    store = RunStore({runs!r})
    runners = [Runner(cfg, store.create(cfg, owner="p%d" % i)).start() for i in range(2)]
    stop_all = lambda: [r.stop() for r in runners]
    if {exit_at_once!r}:  # installed from another thread: no signal handlers, atexit only
        t = threading.Thread(target=install_shutdown, args=(stop_all,))
        t.start()
        t.join()
        while not all(r.run.metrics("step") for r in runners):
            time.sleep(0.1)
    else:
        install_shutdown(stop_all)
        while True:
            time.sleep(0.2)
""")


@pytest.mark.parametrize("how", ["sigterm", "exit"])
def test_a_process_with_background_runs_leaves_them_interrupted_and_resumable(tmp_path, how):
    """SIGTERM (signal handler) or a plain end of the process (atexit)."""
    runs = tmp_path / "runs"
    cfg = {**TINY, "train.epochs": 1000, "train.checkpoint_every_seconds": 0}
    script = SERVER.format(cfg=cfg, runs=str(runs), exit_at_once=how == "exit")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE)
    store = RunStore(runs)
    try:
        if how == "sigterm":
            wait_for(lambda: len(store.list()) == 2
                     and all(r.metrics("step") for r in store.list()), 120, "steps of both runs")
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == (-signal.SIGTERM if how == "sigterm" else 0), err
    assert len(store.list()) == 2
    for run in store.list():
        summary = run.summary()
        assert summary["status"] == "interrupted", summary
        assert summary["reason"] == "the server shut down"
        assert summary["resumable"] is True and run.checkpoint_path() is not None
        assert run.status() == "interrupted"


def test_stop_during_an_evaluation_returns_within_3_s(tmp_path):
    """The step-0 evaluation embeds a 4000-image bank right after the first step; a stop
    then is honoured between embedding batches."""
    cfg = tiny(**{"data.train_size": 4000, "data.test_size": 1000, "data.image_size": 32,
                  "model.width": 16, "train.batch_size": 16, "train.epochs": 10,
                  "eval.knn_train_size": 0, "eval.knn_test_size": 0, "eval.batch_size": 64})
    runner = Runner(cfg, RunStore(tmp_path).create(cfg)).start()
    cursor = 0
    wait_for(lambda: any(e["type"] == "step" for e in runner.log.read(0)[0]), 120, "step")
    _, cursor = runner.log.read(0)
    t0 = time.perf_counter()
    assert runner.stop(timeout=10)
    assert time.perf_counter() - t0 < 3
    events, _ = runner.log.read(cursor)
    assert "eval" not in [e["type"] for e in events], "the evaluation was not cut short"
    summary = runner.run.summary()
    assert summary["status"] == "stopped" and summary["resumable"] is True


def test_an_explicit_thread_count_is_respected():
    code = ("import torch, engine.device as d; {pre}d.configure_cpu_threads(); "
            "print(torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    def threads(pre: str = "", **extra: str) -> int:
        out = subprocess.run([sys.executable, "-c", code.format(pre=pre)], cwd=ROOT,
                             env={**env, **extra}, capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    assert threads(OMP_NUM_THREADS="1") == 1
    assert threads(pre="torch.set_num_threads(1); ") == 1
    assert threads() == len(os.sched_getaffinity(0))


def test_a_time_budget_drives_one_progress_value_to_the_end():
    """BYOL bounded by 3 s only (epochs 0): its target momentum rises from its base to 1; the
    learning rate, the method's hook and the step event see the same progress of a step."""
    cfg = tiny(**{"method.name": "byol", "train.epochs": 0, "train.max_seconds": 3,
                  "method.target_momentum": 0.9})
    trainer = Trainer(cfg, emit_every=0)
    assert trainer.total_steps == float("inf")
    seen: list[float] = []
    hook = trainer.method.on_step_end
    trainer.method.on_step_end = lambda p: (seen.append(p), hook(p))[1]
    events = list(trainer.events())
    steps = [e for e in events if e["type"] == "step"]
    assert events[-1]["status"] == "finished" and "time budget" in events[-1]["reason"]
    assert len(steps) == len(seen) == trainer.step > 3
    assert seen[0] < 0.01 and seen == sorted(seen) and seen[-1] > 0.8
    for event in steps:
        p = seen[event["step"] - 1]
        assert event["progress"] == p
        assert event["lr"] == trainer.schedule.lr(p, event["step"] - 1)
        # a step's loss used the target as the previous step's momentum left it
        before = seen[event["step"] - 2] if event["step"] > 1 else 0.0
        assert event["tau"] == pytest.approx(cosine_momentum(0.9, before), abs=1e-6)
    assert trainer.method.tau == pytest.approx(cosine_momentum(0.9, seen[-1]))
    assert trainer.method.tau > 1 - 0.1 * (1 - 0.9)


def test_a_time_budget_continues_across_a_resume():
    """A 4-s budget stopped after about 1.5 s continues with the seconds it has left."""
    cfg = tiny(**{"train.epochs": 0, "train.max_seconds": 4})
    ds = load_dataset(cfg.data)
    first = Trainer(cfg, ds, emit_every=0)
    events = list(first.events(lambda: first.clock.seconds > 1.5))
    state = [e["state"] for e in events if e["type"] == "checkpoint"][-1]
    used = state["clock"]["seconds"]
    assert 1.5 < used < 4
    second = Trainer(cfg, ds, emit_every=0)
    second.restore(state)
    resumed = list(second.events())
    steps = [e for e in resumed if e["type"] == "step"]
    assert steps[0]["progress"] == pytest.approx(used / 4, abs=0.05)
    assert "time budget" in resumed[-1]["reason"]
    assert 4 <= second.clock.seconds < 4 + 1.5  # not another 4 s


def test_checkpoints_follow_the_step_cadence_and_every_end():
    cfg = tiny(**{"train.epochs": 1, "train.checkpoint_every_seconds": 0,
                  "train.checkpoint_every_steps": 3})
    events = list(Trainer(cfg).events())
    steps = [e["step"] for e in events if e["type"] == "checkpoint"]
    assert steps == [3, 6, 8]  # 256 images / 32 a batch: 8 steps, the last at the end
