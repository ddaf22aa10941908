"""The participant's controls in a real browser: the Change button under their name, the
"My runs / Everyone's runs" switch (on Train and on Runs), and the instructor token that lets
one person steer another's run. One server for the module (``tests.e2e.room``), with Ada's and
Bob's earlier runs on disk; every run a test starts is stopped by that test."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e import room, ui
from tests.e2e.app_server import AppServer
from tests.e2e.room import (
    EARLIER,
    START_S,
    STOP_S,
    TOKEN,
    main,
    runs_on_disk,
    sidebar,
    stop_run,
    summary,
    wait_until_idle,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[AppServer]:
    with room.serve(tmp_path_factory) as server:
        yield server


def owners_on_disk(app: AppServer) -> list[str]:
    return [summary(app, run_id).get("owner") for run_id in runs_on_disk(app)]


def picker_options(page, label: str = "Run") -> list[str]:  # noqa: ANN001
    """Every option the picker ``label`` lists (it is opened and closed again)."""
    def listed() -> list[str]:
        ui.picker(page, label).click()
        try:
            page.get_by_role("option").first.wait_for(timeout=5_000)
            return page.get_by_role("option").all_inner_texts()
        finally:
            page.keyboard.press("Escape")

    return ui.wait_until(listed, 30, f"the options of the {label} picker", interval=1.0)


def show(page, choice: str) -> None:  # noqa: ANN001
    """Press ``My runs`` or ``Everyone's runs`` and wait until it is the one chosen."""
    option = main(page).get_by_role("radiogroup", name="Show").get_by_role(
        "radio", name=choice, exact=True)
    option.click()
    ui.wait_until(lambda: option.get_attribute("aria-checked") == "true", 20, f"{choice} chosen")
    page.wait_for_timeout(1000)  # the rerun of the press draws the list again


def test_change_name_and_the_next_run_is_the_new_names(app, visit):
    wait_until_idle(app)
    page = visit(app.url, "ada")
    assert sidebar(page).get_by_text("ada", exact=True).count() == 1
    sidebar(page).get_by_role("button", name="Change").click()
    box = page.get_by_label("Your name")
    box.wait_for(state="visible", timeout=30_000)
    ui.wait_until(lambda: ui.train_button(page).count() == 0, 20, "the page to wait for a name")
    box.fill("carol")
    page.get_by_role("button", name="Continue").click()
    ui.train_button(page).wait_for(state="visible", timeout=60_000)
    ui.wait_until(lambda: ui.url_param(page, "who") == "carol", 20, "the new name in the URL")
    sidebar(page).get_by_text("carol", exact=True).wait_for(timeout=20_000)
    assert sidebar(page).get_by_text("ada", exact=True).count() == 0

    ui.set_seconds(page, 30)
    run_id = ui.start_run(page, runs_on_disk(app), START_S)
    assert summary(app, run_id)["owner"] == "carol"
    assert " · carol · " in ui.picker_text(page)
    stop_run(page, app, run_id)  # carol may steer her own run
    assert summary(app, run_id)["status"] == "stopped"


def test_my_runs_and_everyones_runs(app, visit):
    page = visit(app.url, "ada")
    show(page, "My runs")
    mine = ui.wait_until(lambda: (o := picker_options(page)) and all(" · ada · " in x for x in o)
                         and o, 30, "only Ada's runs in the picker")
    assert any(o.startswith(EARLIER["ada"]) for o in mine), mine
    show(page, "Everyone's runs")
    everyone = ui.wait_until(lambda: (o := picker_options(page))
                             and any(x.startswith(EARLIER["bob"]) for x in o) and o, 30,
                             "Bob's run in the picker too")
    assert set(mine) < set(everyone)

    # the choice holds on the Runs page, whose table lists the same runs
    show(page, "My runs")
    sidebar(page).get_by_role("link", name=re.compile("Runs$")).click()
    caption = main(page).get_by_text(re.compile(r"^\d+ run\(s\) in "))
    caption.wait_for(state="visible", timeout=30_000)
    counted = lambda: int(caption.inner_text().split()[0])  # noqa: E731
    ui.wait_until(lambda: counted() == owners_on_disk(app).count("ada"), 20, "Ada's runs")
    show(page, "Everyone's runs")
    ui.wait_until(lambda: counted() == len(owners_on_disk(app)), 20, "everyone's runs")
    assert owners_on_disk(app).count("ada") < len(owners_on_disk(app))


def enter_token(page, token: str) -> None:  # noqa: ANN001
    expander = sidebar(page).get_by_test_id("stExpander").filter(has_text="Instructor")
    field = expander.get_by_label("Instructor token", exact=True)
    if not field.is_visible():
        expander.locator("summary").first.click()
    field.fill(token)
    field.press("Enter")


def test_instructor_token_steers_another_participants_run(app, visit):
    wait_until_idle(app)
    bob = visit(app.url, "bob")
    ui.set_seconds(bob, 120)
    run_id = ui.start_run(bob, runs_on_disk(app), START_S)
    try:
        ui.wait_until(lambda: summary(app, run_id).get("status") == "running", START_S,
                      "bob's run to be running")
        teacher = visit(app.url, "teacher")
        ui.pick(teacher, re.compile(r" · bob · .* · running$"))
        ui.wait_until(lambda: ui.url_param(teacher, "run") == run_id, 20, "bob's run on screen")

        enter_token(teacher, "not-the-token")
        sidebar(teacher).get_by_text("This token is not the instructor's.").wait_for(
            timeout=30_000)
        note = main(teacher).get_by_text("only they or the instructor can steer it")
        ui.wait_until(lambda: note.count() == 1, 20, "the owner's note")
        assert ui.main_button(teacher, "Stop").count() == 0
        assert ui.main_button(teacher, "Pause").count() == 0
        assert sidebar(teacher).get_by_text(re.compile("· instructor")).count() == 0

        enter_token(teacher, TOKEN)
        sidebar(teacher).get_by_text(re.compile(r"teacher · instructor")).wait_for(
            timeout=30_000)
        stop = ui.main_button(teacher, "Stop")
        stop.wait_for(state="visible", timeout=30_000)
        refused = sidebar(teacher).get_by_text("This token is not the instructor's.")
        ui.wait_until(lambda: note.count() == 0 and refused.count() == 0, 30,
                      "the owner's note and the token's refusal to go")
        stop.click()
        ui.wait_until(lambda: summary(app, run_id).get("status") == "stopped", STOP_S,
                      "bob's run stopped by the instructor")
        ui.wait_until(lambda: ui.status_on_screen(teacher) == "stopped", 30, "stopped on screen")
        assert summary(app, run_id)["owner"] == "bob"
        ui.wait_until(lambda: ui.status_on_screen(bob) == "stopped", 30,
                      "stopped on bob's page")
    finally:
        if summary(app, run_id).get("status") not in ui.ENDED:
            stop_run(bob, app, run_id)
