"""A run trained by two processes (torchrun, gloo on the CPU) that the app did not start, watched
in a real browser: its owner sees it running with its steps, and "Stop (all processes)" stops
both processes cleanly; a process killed under a run fails it, and the page says why."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator

import pytest

from engine.train.launch import Launch, launch
from engine.train.store import RunStore
from tests.e2e import ui
from tests.e2e.app_server import AppServer, serving
from tests.e2e.room import main, summary
from tests.test_distributed_run import ENV, tiny, workers

pytestmark = pytest.mark.e2e

START_S = 120  # torchrun's start, two processes loading the data, on a shared 2-core machine


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[AppServer]:
    with serving(tmp_path_factory) as server:
        yield server


@pytest.fixture
def job(app) -> Iterator[Launch]:
    """Ada's run of 500 epochs (4,000 steps) on two processes, started outside the app (as
    torchrun in a terminal would be); stopped or killed by the test, never left behind."""
    started = launch(tiny(epochs=500), RunStore(app.runs_dir), nproc=2, owner="ada", env=ENV)
    try:
        yield started
    finally:
        if started.alive:
            started.kill()


def watch(page, app: AppServer, job: Launch) -> None:  # noqa: ANN001
    """Open the run by its link and wait until its steps come in on screen."""
    ui.open_run(page, app.url, "ada", job.run.id)
    ui.wait_until(lambda: ui.status_on_screen(page) == "running" and ui.step_on_screen(page) > 0,
                  START_S, "the two-process run's steps on screen")
    assert main(page).get_by_text("2 processes · global batch 32").count() == 1


def test_stop_all_processes_from_the_browser(app, visit, job):
    page = visit(app.url, "ada")
    watch(page, app, job)
    ui.main_button(page, re.escape("Stop (all processes)")).click()
    ui.wait_until(lambda: summary(app, job.run.id).get("status") == "stopped", START_S,
                  "the run stopped on disk")
    assert job.wait(timeout=60) == 0  # both processes ended by the stop, torchrun with them
    ui.wait_until(lambda: ui.status_on_screen(page) == "stopped", 30, "stopped on screen")
    assert summary(app, job.run.id).get("resumable")


def test_a_killed_process_fails_the_run_on_screen(app, visit, job):
    page = visit(app.url, "ada")
    watch(page, app, job)
    ranks = workers(job.process.pid)
    os.kill(ranks[1], signal.SIGKILL)
    assert job.wait(timeout=180) != 0
    ui.wait_until(lambda: ui.status_on_screen(page) == "failed", 30, "failed on screen")
    said = main(page).get_by_text("a process of this 2-process run ended")
    said.first.wait_for(state="visible", timeout=30_000)
