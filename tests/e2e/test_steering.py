"""Steering runs in a real browser: the run on screen is the one the participant chose or last
started, whatever other runs and other participants do; Stop stops it within seconds; a run
queued behind another shows its place and starts when the first ends.

One server for the module, started with ``SSL_STUDIO_MAX_RUNS_CPU=1`` (one run at a time, the
rest queued). Runs are short (10 to 60 s budgets on small evaluation settings).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import ui
from tests.e2e.app_server import AppServer, serving

pytestmark = pytest.mark.e2e

STOP_S = 10  # the promise: a stopped run reads "stopped" within this many seconds
START_S = 60  # a shared 2-core machine may take long to load data and evaluate at step 0


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[AppServer]:
    with serving(tmp_path_factory, env={"SSL_STUDIO_MAX_RUNS_CPU": "1"}) as server:
        yield server


def disk_status(app: AppServer, run_id: str) -> str:
    try:
        return json.loads((Path(app.runs_dir) / run_id / "summary.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return "?"


def runs_on_disk(app: AppServer) -> set[str]:
    return {p.name for p in Path(app.runs_dir).iterdir() if (p / "config.json").exists()}


def wait_until_idle(app: AppServer, timeout: float = 60) -> None:
    """No run of an earlier test still queued or going."""
    ui.wait_until(lambda: all(disk_status(app, r) in ui.ENDED for r in runs_on_disk(app)),
                  timeout, "earlier runs to end")


def test_start_and_stop_three_times(app, visit):
    """Each run stops within STOP_S of the press with the page still on it (the first one is
    paused and resumed before)."""
    page = visit(app.url, "ada")
    ui.set_seconds(page, 60)
    known = runs_on_disk(app)
    for i in range(3):
        run_id = ui.start_run(page, known, START_S)
        known.add(run_id)
        ui.wait_until(lambda: ui.step_on_screen(page) > 0, START_S, "the first steps")
        if i == 0:  # Pause holds the run, Resume lets it go on
            ui.main_button(page, "Pause").click()
            ui.wait_until(lambda: ui.status_on_screen(page) == "paused", STOP_S, "paused")
            # It holds once the steps (or the step-0 evaluation) under way have finished.
            page.get_by_text("Paused. Press Resume to go on.").wait_for(timeout=STOP_S * 1000)
            held = ui.step_on_screen(page)
            page.wait_for_timeout(2000)
            assert ui.step_on_screen(page) == held, "a paused run holds"
            assert ui.status_on_screen(page) == "paused"
            ui.main_button(page, "Resume").click()
            ui.wait_until(lambda held=held: ui.step_on_screen(page) > held + 1, STOP_S,
                          "steps again")
        pressed = time.time()
        ui.main_button(page, "Stop").click()
        ui.wait_until(lambda: ui.status_on_screen(page) == "stopped", STOP_S,
                      f"run {i + 1} to read stopped")
        took = time.time() - pressed
        assert ui.url_param(page, "run") == run_id, "the page left the run it started"
        assert disk_status(app, run_id) == "stopped"
        assert " · ada · " in ui.picker_text(page)
        print(f"run {i + 1}: stopped on screen {took:.1f} s after Stop")
    ui.shot(page, "steering-stopped")


def test_page_stays_on_the_new_run_after_an_older_one_was_picked(app, visit):
    wait_until_idle(app)
    page = visit(app.url, "ada")
    known = runs_on_disk(app)
    if not known:  # run alone: make an older run first
        known.add(ui.start_run(page, known, START_S))
        ui.main_button(page, "Stop").click()
        ui.wait_until(lambda: ui.status_on_screen(page) in ui.ENDED, STOP_S, "a stopped run")
    ui.pick(page, "stopped")
    ui.wait_until(lambda: ui.url_param(page, "run") in known, 10, "the older run on screen")
    older = ui.url_param(page, "run")
    ui.set_seconds(page, 10)
    run_id = ui.start_run(page, known, START_S)
    assert run_id != older
    deadline = time.time() + START_S + 30
    while ui.status_on_screen(page) != "finished":  # the page never goes back to the older run
        assert ui.url_param(page, "run") == run_id, "the page went back to the older run"
        assert time.time() < deadline, "the new run did not finish"
        page.wait_for_timeout(500)
    page.wait_for_timeout(3000)  # the reruns after the end
    assert ui.url_param(page, "run") == run_id
    assert ui.status_on_screen(page) == "finished"
    ui.shot(page, "steering-finished")


def test_two_participants_each_see_their_own_run(app, visit):
    wait_until_idle(app)
    ada, bob = visit(app.url, "ada"), visit(app.url, "bob")
    for page in (ada, bob):
        ui.set_seconds(page, 30)
    known = runs_on_disk(app)
    ada_run = ui.start_run(ada, known, START_S)
    bob_run = ui.start_run(bob, known | {ada_run}, START_S)  # queued behind ada's
    deadline = time.time() + 10
    while time.time() < deadline:  # whatever the other does, each page stays on its own run
        assert ui.url_param(ada, "run") == ada_run
        assert ui.url_param(bob, "run") == bob_run
        assert " · ada · " in ui.picker_text(ada)
        assert " · bob · " in ui.picker_text(bob)
        ada.wait_for_timeout(500)
    # ada may not steer bob's run: opening it shows no Stop/Cancel, and says whose it is
    ui.pick(ada, " · bob · ")
    ui.wait_until(lambda: ui.url_param(ada, "run") == bob_run, 10, "bob's run on ada's page")
    ui.wait_until(lambda: ada.get_by_text("only they or the instructor").count() > 0, 10,
                  "the owner's note")
    assert ui.main_button(ada, "Cancel").count() == 0
    assert ui.main_button(ada, "Stop").count() == 0
    ui.shot(ada, "steering-not-mine")
    ui.pick(ada, re.compile(r" · ada · .* · (running|loading)$"))
    ui.wait_until(lambda: ui.url_param(ada, "run") == ada_run, 10, "ada back on her run")
    ui.main_button(ada, "Stop").click()
    ui.main_button(bob, "Cancel|Stop").first.click()
    ui.wait_until(lambda: disk_status(app, ada_run) in ui.ENDED
                  and disk_status(app, bob_run) in ui.ENDED, 30, "both runs to end")


def test_a_queued_run_shows_its_place_and_starts_when_the_first_ends(app, visit):
    wait_until_idle(app)
    page = visit(app.url, "ada")
    ui.set_seconds(page, 10)
    known = runs_on_disk(app)
    first = ui.start_run(page, known, START_S)
    known.add(first)
    second = ui.start_run(page, known, START_S)
    ui.wait_until(lambda: page.get_by_text("Queued, position 1").count() > 0, 10,
                  "the queue position")
    ui.shot(page, "steering-queued")
    assert ui.status_on_screen(page) == "queued"
    ui.wait_until(lambda: disk_status(app, first) == "finished", START_S + 30, "the first run")
    ui.wait_until(lambda: ui.status_on_screen(page) in ("loading", "running", "finished"),
                  30, "the queued run to start")
    assert ui.url_param(page, "run") == second, "the page did not follow the queued run"
    ui.wait_until(lambda: disk_status(app, second) == "finished", START_S + 30, "the second run")


def test_a_refused_start_shows_at_once_and_clears_when_the_inputs_change(app, visit, tmp_path):
    page = visit(app.url, "ada")
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("combobox", name="Data set", exact=True).click()
    page.get_by_role("option", name="folder", exact=True).click()
    folder = sidebar.get_by_role("textbox", name="Image folder")
    known = runs_on_disk(app)
    alert = page.get_by_test_id("stMainBlockContainer").get_by_text("Cannot start the run")
    for name in ("first-missing", "second-missing"):
        folder.fill(str(tmp_path / name))
        folder.press("Enter")
        page.wait_for_timeout(1500)
        assert alert.count() == 0  # nothing before the press
        ui.train_button(page).click()
        alert.first.wait_for(state="visible", timeout=20_000)  # in the rerun of the press
        box = page.get_by_test_id("stAlert").filter(has_text="Cannot start the run").first
        text = box.inner_text()
        assert name in text and "first-missing" not in text.replace(name, ""), text
    ui.shot(page, "steering-refused")
    folder.fill(str(tmp_path / "third"))
    folder.press("Enter")
    ui.wait_until(lambda: alert.count() == 0, 10, "the message to clear")
    assert runs_on_disk(app) == known  # a refused start makes no run
