"""The training loop, the background runner and the run store working together."""

import subprocess
import threading
import time

import pytest
import torch

from engine.config import RunConfig
from engine.train.events import HELD
from engine.train.registry import RunRegistry
from engine.train.runner import Runner, run_foreground
from engine.train.store import RunStore
from tests.fixtures.tiny_runs import TINY


def tiny(**overrides) -> RunConfig:
    return RunConfig().with_overrides({**TINY, **overrides})


def dead_pid() -> int:
    """The id of a process that has ended."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def run_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("run-")]


def test_foreground_run_writes_a_complete_run_directory(tmp_path):
    run, last = run_foreground(tiny(**{"train.epochs": 2}), RunStore(tmp_path))
    assert last["type"] == "finished", last
    summary = run.summary()
    assert summary["status"] == "finished"
    assert summary["steps"] == 2 * (512 // 64)
    for key in ("knn_top1", "images_per_s", "knn_colour", "linear_top1"):
        assert key in summary
    steps = [e["step"] for e in run.metrics("step")]
    assert steps == sorted(steps) and steps[-1] == summary["steps"]
    kinds = [e["type"] for e in run.metrics()]
    assert kinds[0] == "status" and kinds[1] == "start" and kinds[-1] == "finished"
    assert "diagnostics" in kinds
    assert run.snapshots()[0] == 0 and run.snapshots()[-1] == summary["steps"]
    snap = run.load_snapshot()
    assert snap["h"].shape[0] == 128 and snap["z"].shape == (128, 128)
    assert run.checkpoint_path() is not None
    ckpt = torch.load(run.checkpoint_path(), weights_only=False)
    assert ckpt["step"] == summary["steps"]


def test_epochs_zero_evaluates_the_untrained_backbone(tmp_path):
    run, last = run_foreground(
        tiny(**{"train.epochs": 0, "train.max_seconds": 0, "model.backbone": "pixels"}),
        RunStore(tmp_path),
    )
    assert last["type"] == "finished" and last["steps"] == 0
    assert 0.0 <= run.summary()["knn_top1"] <= 1.0


def test_time_budget_is_a_normal_finish(tmp_path):
    t0 = time.perf_counter()
    run, last = run_foreground(
        tiny(**{"train.epochs": 1000, "train.max_seconds": 3}), RunStore(tmp_path)
    )
    assert last["status"] == "finished" and "time budget" in last["reason"]
    assert time.perf_counter() - t0 < 30


def test_nan_loss_fails_the_run_with_advice(tmp_path, monkeypatch):
    import engine.methods.simclr as simclr

    def nan_loss(z0, z1, temperature):
        return (z0.sum() + z1.sum()) * float("nan")

    monkeypatch.setattr(simclr, "info_nce", nan_loss)
    run, last = run_foreground(tiny(**{"train.epochs": 1}), RunStore(tmp_path))
    assert last["type"] == "failed"
    assert "nan" in last["error"].lower() and "learning rate" in last["error"]
    assert run.summary()["status"] == "failed"


def test_bad_input_fails_the_run_not_the_process(tmp_path):
    run, last = run_foreground(
        tiny(**{"data.name": "folder", "data.root": str(tmp_path / "missing")}),
        RunStore(tmp_path / "runs"),
    )
    assert last["type"] == "failed" and "missing" in last["error"]
    assert run.summary()["status"] == "failed"


def test_runner_pause_resume_stop_and_no_thread_left(tmp_path):
    cfg = tiny(**{"train.epochs": 1000})
    runner = Runner(cfg, RunStore(tmp_path).create(cfg)).start()
    cursor, steps = 0, []
    deadline = time.time() + 60
    while not steps and time.time() < deadline:  # wait for training to start
        runner.log.wait(cursor, 1.0)
        events, cursor = runner.log.read(cursor)
        steps += [e["step"] for e in events if e["type"] == "step"]
    assert steps, "no step event within 60 s"

    runner.pause()
    held = []  # the steps under way finish, then the run records that it holds
    while not held and time.time() < deadline + 60:
        runner.log.wait(cursor, 1.0)
        events, cursor = runner.log.read(cursor)
        held += [e for e in events if e.get("message") == HELD]
    assert held and held[0]["status"] == "paused", "no 'held' event after Pause"
    time.sleep(1.5)
    events, cursor = runner.log.read(cursor)
    assert not [e for e in events if e["type"] == "step"], "steps while paused"
    assert runner.paused

    runner.resume()

    def on_disk() -> list[str]:
        return [e["status"] for e in runner.run.metrics() if e["type"] == "status"]

    while on_disk()[-1] != "running" and time.time() < deadline + 90:
        time.sleep(0.05)
    assert on_disk()[-2:] == ["paused", "running"], (
        "metrics.jsonl says when the run held and when it went on (the app reads it)")
    t0 = time.perf_counter()
    assert runner.stop(timeout=10)
    assert time.perf_counter() - t0 < 10
    assert run_threads() == []
    summary = runner.run.summary()
    assert summary["status"] == "stopped" and summary["resumable"] is True


def test_registry_reports_status_and_interrupted_runs(tmp_path):
    registry = RunRegistry(RunStore(tmp_path))
    runner = registry.start(tiny(**{"train.epochs": 1}))
    runner.join(120)
    assert registry.status(runner.id) == "finished"
    # A run whose process died mid-training reads as interrupted after a restart.
    dead = registry.store.create(tiny(), status="running")
    dead.write_summary({"pid": dead_pid()})
    assert RunRegistry(RunStore(tmp_path)).status(dead.id) == "interrupted"
    with pytest.raises(ValueError, match="batch_size"):
        registry.start(tiny(**{"train.batch_size": 1}))


def test_runner_resumes_a_stopped_run_in_its_own_directory(tmp_path):
    cfg = tiny(**{"train.epochs": 3, "train.max_seconds": 0})
    run = RunStore(tmp_path).create(cfg, owner="ada")
    ended = []
    runner = Runner(cfg, run, on_exit=lambda r: ended.append(r.run.summary()["status"])).start()
    deadline = time.time() + 60
    while not run.metrics("step") and time.time() < deadline:
        time.sleep(0.05)
    runner.pause()
    assert run.summary()["status"] == "paused"
    beat = run.summary()["heartbeat"]
    time.sleep(2.5)  # the heartbeat goes on while paused
    assert run.summary()["heartbeat"] > beat and run.status() == "paused"
    assert runner.stop(timeout=10)
    assert ended == ["stopped"]  # on_exit comes after the final status
    saved = torch.load(run.checkpoint_path(), weights_only=False)["step"]
    assert run.summary()["resumable"] is True and 0 < saved < 24

    again = Runner(cfg, run, resume=True).start()
    again.join(120)
    summary = run.summary()
    assert summary["status"] == "finished" and summary["steps"] == 24 and summary["owner"] == "ada"
    assert not summary["resumable"]
    steps = [e["step"] for e in run.metrics("step")]
    assert steps == sorted(set(steps)) and steps[-1] == 24
    assert [e["status"] for e in run.metrics("status")].count("resumed") == 1
    assert run_threads() == []
