"""The Train page's "Train on all GPUs": shown only with 2 or more GPUs; it launches the sidebar's
run as a torchrun job (a stand-in here: the launcher itself is tested on CPU processes in
test_distributed_run.py), follows it like any run and offers its Stop."""

from __future__ import annotations

import time

import pytest

import app.all_gpus as all_gpus
from tests.fixtures.app import no_exception, open_app


class FakeJob:
    """What :func:`engine.train.launch.launch` returns, without processes."""

    def __init__(self, run) -> None:  # noqa: ANN001
        self.run, self.alive, self.stopped = run, True, False

    def settle(self) -> str:
        return self.run.status()

    def stop(self, timeout: float = 60.0) -> bool:
        self.stopped, self.alive = True, False
        return True


@pytest.fixture
def launches(monkeypatch):
    calls = []

    def fake_launch(cfg, store, nproc=None, owner="", env=None):  # noqa: ANN001, ANN202
        job = FakeJob(store.create(cfg, owner=owner, status="queued"))
        calls.append((cfg, nproc, owner, job))
        return job

    monkeypatch.setattr(all_gpus, "launch", fake_launch)
    all_gpus.gpus.clear()
    all_gpus.jobs().clear()
    yield calls
    all_gpus.gpus.clear()
    all_gpus.jobs().clear()


def test_no_button_with_one_gpu(monkeypatch, tmp_path, launches):
    monkeypatch.setattr(all_gpus, "gpu_count", lambda: 1)
    at = open_app(monkeypatch, tmp_path / "runs").run()
    no_exception(at)
    assert "train_all_gpus" not in [b.key for b in at.button]


def test_the_button_launches_the_run_and_stops_it(monkeypatch, tmp_path, launches):
    monkeypatch.setattr(all_gpus, "gpu_count", lambda: 4)
    at = open_app(monkeypatch, tmp_path / "runs").run()
    no_exception(at)
    at.button(key="train_all_gpus").click().run()
    no_exception(at)
    [(cfg, nproc, owner, job)] = launches
    assert nproc == 4 and owner == "tester" and cfg.method.name == "simclr"
    # the page follows the new run, with the job's Stop in place of the server's controls
    assert "stop_all_gpus" in [b.key for b in at.button]
    at.button(key="stop_all_gpus").click().run()
    no_exception(at)
    for _ in range(50):
        if job.stopped:
            break
        time.sleep(0.1)
    assert job.stopped


def test_a_run_of_several_processes_started_elsewhere_can_be_stopped(monkeypatch, tmp_path,
                                                                     launches):
    from engine.config import RunConfig
    from engine.train.distributed_run import STOP_FILE
    from engine.train.store import RunStore

    monkeypatch.setattr(all_gpus, "gpu_count", lambda: 1)
    run = RunStore(tmp_path / "runs").create(RunConfig(), owner="tester", status="running")
    run.write_summary({"processes": 2})  # as rank 0 of a torchrun job writes it
    at = open_app(monkeypatch, tmp_path / "runs", query={"run": run.id}).run()
    no_exception(at)
    at.button(key="stop_all_gpus").click().run()
    no_exception(at)
    assert (run.path / STOP_FILE).exists()
    # someone else's run: no Stop for a participant
    other = RunStore(tmp_path / "runs").create(RunConfig(), owner="someone", status="running")
    other.write_summary({"processes": 2})
    at = open_app(monkeypatch, tmp_path / "runs", query={"run": other.id}).run()
    no_exception(at)
    assert "stop_all_gpus" not in [b.key for b in at.button]
