"""The app killed or stopped under a run: after a restart the run reads ``interrupted`` (or
``stopped``), keeps its checkpoint, and Resume continues it in the browser, its curve going on
past where it was.

Each test starts its own server on a runs folder and starts it again on the same folder.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.e2e import ui
from tests.e2e.app_server import AppServer

pytestmark = pytest.mark.e2e

START_S = 60


def summary(runs: Path, run_id: str) -> dict:
    return json.loads((runs / run_id / "summary.json").read_text())


def last_step(runs: Path, run_id: str) -> int:
    """The last training step the run wrote to metrics.jsonl."""
    step = 0
    for line in (runs / run_id / "metrics.jsonl").read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("type") == "step":
            step = max(step, int(event["step"]))
    return step


def start_and_train(page, seconds: int = 120) -> str:
    ui.set_seconds(page, seconds)
    run_id = ui.start_run(page, set(), START_S)
    ui.wait_until(lambda: ui.step_on_screen(page) > 0, START_S, "the first steps")
    return run_id


def test_kill_9_of_the_app_then_resume_continues_the_run(tmp_path, visit):
    runs = tmp_path / "runs"
    app = AppServer(runs, tmp_path / "streamlit.log").start()
    try:
        page = visit(app.url, "ada")
        run_id = start_and_train(page)
        # a Stop writes a checkpoint; Resume goes on from it (the browser's Resume button)
        ui.main_button(page, "Stop").click()
        ui.wait_until(lambda: ui.status_on_screen(page) == "stopped", 10, "stopped")
        stopped_at = ui.step_on_screen(page)
        ui.main_button(page, "Resume").click()
        ui.wait_until(lambda: ui.step_on_screen(page) > stopped_at + 5, START_S,
                      "steps after Resume")
        assert ui.url_param(page, "run") == run_id
        before = last_step(runs, run_id)
    finally:
        app.stop(signal.SIGKILL)
    assert summary(runs, run_id)["status"] in ("running", "loading")  # as the crash left it
    app = AppServer(runs, tmp_path / "streamlit-2.log").start()
    try:
        page = visit(app.url, "ada")
        ui.open_run(page, app.url, "ada", run_id)
        ui.wait_until(lambda: ui.status_on_screen(page) == "interrupted", 20, "interrupted")
        assert summary(runs, run_id)["resumable"] is True
        ui.shot(page, "faults-interrupted")
        ui.main_button(page, "Resume").click()
        ui.wait_until(lambda: ui.step_on_screen(page) > before, START_S + 30,
                      f"the curve past step {before}")
        assert ui.url_param(page, "run") == run_id
        ui.main_button(page, "Stop").click()
        ui.wait_until(lambda: ui.status_on_screen(page) == "stopped", 10, "stopped again")
    finally:
        app.stop()


def test_sigterm_of_the_app_leaves_the_run_interrupted_with_a_checkpoint(tmp_path, visit):
    runs = tmp_path / "runs"
    app = AppServer(runs, tmp_path / "streamlit.log").start()
    try:
        page = visit(app.url, "ada")
        run_id = start_and_train(page)
    finally:
        code = app.stop(signal.SIGTERM)
    s = summary(runs, run_id)
    assert s["status"] in ("interrupted", "stopped"), (code, s.get("reason"))
    assert (runs / run_id / "checkpoints" / "last.pt").exists()
    app = AppServer(runs, tmp_path / "streamlit-2.log").start()
    try:
        page = visit(app.url, "ada")
        ui.open_run(page, app.url, "ada", run_id)
        assert ui.status_on_screen(page) in ("interrupted", "stopped")
        ui.main_button(page, "Resume").wait_for(state="visible", timeout=10_000)
        ui.shot(page, "faults-sigterm")
    finally:
        app.stop()
