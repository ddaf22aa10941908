"""The Train page's controls in a real browser: the augmentation panel (New sample, editing
a preset's ops, adding an op), the Budget switch between seconds and epochs, and the run name.
One server for the module (``tests.e2e.room``); every run a test starts is stopped by that
test."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e import room, ui
from tests.e2e.app_server import AppServer
from tests.e2e.room import (
    START_S,
    config,
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


def augmentations(page):  # noqa: ANN001, ANN201
    """Open the Train page's Augmentations tab; returns its panel."""
    main(page).get_by_role("tab", name=re.compile("Augmentations")).click()
    panel = main(page).get_by_role("tabpanel").filter(has_text="Sampled views")
    panel.wait_for(state="visible", timeout=60_000)
    return panel


def preview_source(panel) -> str:  # noqa: ANN001
    """The address of the sampled views' image as the browser shows it now."""
    img = panel.get_by_test_id("stImage").locator("img")
    return img.first.get_attribute("src", timeout=10_000) if img.count() == 1 else ""


def test_new_sample_draws_other_images(app, visit):
    page = visit(app.url, "ada")
    panel = augmentations(page)
    first = ui.wait_until(lambda: preview_source(panel), 60, "the sampled views")
    seen = {first}
    for _ in range(2):  # each press samples other images and views
        panel.get_by_role("button", name=re.compile("New sample$")).click()
        seen.add(ui.wait_until(lambda s=frozenset(seen): (src := preview_source(panel))
                               not in s and src, 30, "a new sample"))
    assert len(seen) == 3
    assert panel.get_by_text("Cannot preview").count() == 0


def test_edit_the_ops_and_add_one(app, visit):
    page = visit(app.url, "ada")
    panel = augmentations(page)
    before = ui.wait_until(lambda: preview_source(panel), 60, "the sampled views")
    assert panel.get_by_text("View 1", exact=True).count() == 0, "the ops are shown, not edited"
    panel.get_by_text("Edit the ops of this preset").click()
    view1 = panel.get_by_test_id("stColumn").filter(
        has=page.get_by_text("View 1", exact=True)).first
    view2 = panel.get_by_test_id("stColumn").filter(
        has=page.get_by_text("View 2", exact=True)).first
    op = view1.get_by_role("checkbox", name="random resized crop")
    op.wait_for(state="visible", timeout=30_000)
    ops = view1.get_by_role("checkbox").count()
    added = view1.get_by_role("checkbox", name="random translate")
    assert added.count() == 0

    view1.get_by_role("combobox").click()
    page.keyboard.type("random_tr")  # the list is long: narrow it
    page.get_by_role("option", name="random_translate", exact=True).click()
    ui.wait_until(lambda: added.count() == 1, 30, "the added op in view 1")
    assert added.is_checked()
    assert view1.get_by_role("checkbox").count() == ops + 1
    assert view2.get_by_role("checkbox", name="random translate").count() == 0
    ui.wait_until(lambda: view1.get_by_role("combobox").input_value() == "(add an op)", 10,
                  "the op picker back at its prompt")
    # the preview draws the edited views (a translation of every image changes them)
    after = ui.wait_until(lambda: (src := preview_source(panel)) != before and src, 30,
                          "the preview of the edited views")
    assert panel.get_by_text("Cannot preview").count() == 0

    # another control's rerun keeps the op once (the picker's old choice is not sent again)
    panel.get_by_role("button", name=re.compile("New sample$")).click()
    ui.wait_until(lambda: (src := preview_source(panel)) not in (before, after) and src, 30,
                  "a new sample of the edited views")
    page.wait_for_timeout(1500)
    assert view1.get_by_role("checkbox", name="random translate").count() == 1
    assert view1.get_by_role("checkbox").count() == ops + 1
    assert panel.get_by_text("Cannot preview").count() == 0


def test_epochs_budget_and_run_name_reach_the_run(app, visit):
    wait_until_idle(app)
    page = visit(app.url, "ada")
    side = sidebar(page)
    seconds = side.get_by_test_id("stSlider").filter(has_text="Seconds")
    epochs = side.get_by_role("spinbutton", name="Epochs", exact=True)
    budget = side.get_by_test_id("stRadio").filter(has_text="Time budget")
    seconds.wait_for(state="visible", timeout=30_000)
    assert epochs.count() == 0
    budget.get_by_text("Epochs", exact=True).click()
    epochs.wait_for(state="visible", timeout=30_000)
    ui.wait_until(lambda: seconds.count() == 0, 10, "the seconds slider to go")
    budget.get_by_text("Time budget", exact=True).click()
    seconds.wait_for(state="visible", timeout=30_000)
    ui.wait_until(lambda: epochs.count() == 0, 10, "the epochs field to go")
    budget.get_by_text("Epochs", exact=True).click()
    epochs.wait_for(state="visible", timeout=30_000)
    epochs.fill("3")
    epochs.press("Enter")
    name = side.get_by_role("textbox", name="Run name (optional)")
    name.fill("by-epochs")
    name.press("Enter")
    page.wait_for_timeout(1500)

    run_id = ui.start_run(page, runs_on_disk(app), START_S)
    cfg = config(app, run_id)
    assert cfg["train"]["max_seconds"] == 0
    assert cfg["train"]["epochs"] == 3
    assert cfg["name"] == "by-epochs"
    assert ui.picker_text(page).startswith("by-epochs · ada · ")
    stop_run(page, app, run_id)
    assert summary(app, run_id)["owner"] == "ada"
    assert ui.picker_text(page).startswith("by-epochs · ada · ")
