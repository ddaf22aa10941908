"""Runs in child processes (the app's runs): steering reaches the child, the server keeps none of
the run's memory, and a child that dies ends its run ``failed`` with the reason."""

from __future__ import annotations

import os
import signal
import time

import pytest

from engine.config import RunConfig
from engine.train.events import HELD
from engine.train.participants import ANONYMOUS
from engine.train.process import ProcessRunner, make_process_runner
from engine.train.registry import RunRegistry
from engine.train.store import RunStore


def tiny(seconds: float = 60) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"name": "shapes", "image_size": 16, "train_size": 256, "test_size": 64},
        "model": {"backbone": "small_cnn", "width": 8},
        "train": {"device": "cpu", "batch_size": 32, "max_seconds": seconds, "epochs": 1000},
        "eval": {"every_seconds": 1000, "knn_train_size": 64, "knn_test_size": 64,
                 "snapshot_size": 32, "probe_size": 32},
    })


@pytest.fixture
def registry(tmp_path):
    reg = RunRegistry(RunStore(tmp_path / "runs"), runner_factory=make_process_runner)
    yield reg
    reg.stop_all()


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def test_pause_resume_and_stop_reach_the_child(registry):
    run_id = registry.submit(tiny(), ANONYMOUS)
    run = registry.run(run_id)
    wait_for(lambda: run.metrics("step"))
    runner = registry.live(run_id)
    assert isinstance(runner, ProcessRunner)
    child = run.summary()["pid"]
    assert child != os.getpid()  # trained elsewhere

    registry.pause(run_id)
    wait_for(lambda: run.summary()["status"] == "paused")
    # The child says when it holds (the steps under way when the pause arrived finish first).
    wait_for(lambda: any(e.get("message") == HELD for e in runner.log.read(0)[0]))
    steps = len(run.metrics("step"))
    time.sleep(1.5)
    assert len(run.metrics("step")) == steps, "steps went on while paused"
    registry.unpause(run_id)
    wait_for(lambda: len(run.metrics("step")) > steps)
    assert run.summary()["status"] == "running"

    assert registry.stop(run_id, timeout=20)
    summary = run.summary()
    assert summary["status"] == "stopped"
    assert summary["resumable"] and run.checkpoint_path() is not None
    assert runner.result is not None and runner.result["type"] == "finished"
    wait_for(lambda: not _exists(child), timeout=10)  # the child has gone, and its memory


def test_a_killed_child_fails_its_run_with_the_signal(registry):
    run_id = registry.submit(tiny(), ANONYMOUS)
    run = registry.run(run_id)
    wait_for(lambda: run.metrics("step"))
    os.kill(run.summary()["pid"], signal.SIGKILL)
    wait_for(lambda: registry.live(run_id) is None)
    summary = run.summary()
    assert summary["status"] == "failed"
    assert "killed by SIGKILL" in summary["reason"]
    assert registry.status(run_id) == "failed"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_child_does_not_run_the_page_streamlit_is_running(registry, tmp_path, monkeypatch):
    """Streamlit puts the page it runs in ``sys.modules["__main__"]``; a child started then
    would run that page again (multiprocessing imports the parent's main module in a new
    process). Here the "page" leaves a mark when it is run."""
    import sys
    import types

    mark = tmp_path / "the page ran"
    page = tmp_path / "page.py"
    page.write_text(f"open({str(mark)!r}, 'w').close()\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__, fake_main.__spec__ = str(page), None
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    run_id = registry.submit(tiny(), ANONYMOUS)
    run = registry.run(run_id)
    wait_for(lambda: run.metrics("step"))
    assert registry.stop(run_id, timeout=20)
    assert not mark.exists()


def test_a_data_set_sent_to_a_run_keeps_its_memory_where_readers_have_it(registry):
    """Pages keep reading the server's cached data set while a run starts with it: sending it
    to the training process must not move its tensors (that freed memory under a reader and
    crashed the server). The server's cache shares it when it loads it; a send moves nothing."""
    from app.state import dataset

    cfg = tiny(seconds=2)
    ds = dataset(cfg.data)  # the server's copy, as the Train page passes it to the run

    def pointers() -> list[int]:
        return [t.data_ptr() for t in (ds.train.images, ds.train.labels, ds.test.images)]

    assert ds.train.images.is_shared() and ds.test.labels.is_shared()
    held = pointers()
    run_id = registry.submit(cfg, ANONYMOUS, ds)
    run = registry.run(run_id)
    wait_for(lambda: run.summary().get("status") in ("finished", "stopped", "failed"))
    assert run.summary()["status"] == "finished", run.summary().get("error")
    assert pointers() == held


def test_the_fork_server_going_first_does_not_fail_a_run_that_goes_on(registry):
    """A SIGTERM to the app's process group ends the fork server at once, while the run's own
    process is still writing its final checkpoint. The fork server is where the run's exit code
    comes from: with it gone, multiprocessing reports the living child as ended with code 255.
    The run must be judged by its own process, not by that; and the next run starts a new
    fork server."""
    from multiprocessing import forkserver

    run_id = registry.submit(tiny(seconds=4), ANONYMOUS)
    run = registry.run(run_id)
    wait_for(lambda: run.metrics("step"))
    server = forkserver._forkserver._forkserver_pid
    assert server is not None and _exists(server)
    os.kill(server, signal.SIGTERM)
    wait_for(lambda: registry.live(run_id) is None, timeout=30)
    summary = run.summary()
    assert summary["status"] == "finished", summary.get("error")
    after = registry.run(registry.submit(tiny(seconds=1), ANONYMOUS))
    wait_for(lambda: after.summary().get("status") in ("finished", "failed"), timeout=60)
    assert after.summary()["status"] == "finished", after.summary().get("error")
    assert forkserver._forkserver._forkserver_pid != server
