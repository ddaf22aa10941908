"""The pages' remaining controls in a real browser: the Train page's augmentation panel (New
sample, editing a preset's ops, adding an op), its Budget and Run name settings, the
participant's Change button, the "My runs / Everyone's runs" switch, the instructor token, and
on the Lessons page the lesson picker, Stop while a lesson runs and clearing the room's
predictions.

One server for the module, with an instructor token and a lessons folder made by the test
(``SSL_STUDIO_LESSONS``): a lesson with a question and a lesson long enough to be stopped. Two
finished runs (Ada's and Bob's) are written to its runs folder before it starts; every run a
test starts is stopped by that test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine.config import RunConfig
from engine.predictions import answers, record_answer
from engine.train.store import RunStore
from tests.e2e import ui
from tests.e2e.app_server import AppServer
from tests.fixtures.lessons import TINY_LESSON_BASE

pytestmark = pytest.mark.e2e

TOKEN = "e2e-instructor"
START_S = 90  # a shared 2-core machine may take long to load data and evaluate at step 0
STOP_S = 60
ASKED = {"title": "A lesson with a question", "question": "Which run ends with the higher kNN?"}
LONG = {"title": "A lesson long enough to stop",
        "teaches": "Two runs of many epochs, stopped by the test before they end."}
EARLIER = {"ada": "ada-earlier", "bob": "bob-earlier"}  # the runs on disk before the server


def write_lessons(folder: Path) -> None:
    """``asked`` (a question, never run here) and ``long`` (no question, runs of 50 epochs)."""
    check = {"run": "first", "metric": "status", "op": "==", "value": "finished",
             "says": "the first run finishes"}
    (folder / "asked.yaml").write_text(yaml.safe_dump({
        "title": ASKED["title"],
        "teaches": "Predict first, then run. It is for the tests.",
        "base": TINY_LESSON_BASE,
        "runs": [{"name": "first", "set": {"method.name": "simclr"}},
                 {"name": "second", "set": {"method.name": "simsiam"}}],
        "checks": [check],
        "predict": {"question": ASKED["question"], "answer": {"highest": "knn_top1"}},
    }))
    (folder / "long.yaml").write_text(yaml.safe_dump({
        "title": LONG["title"],
        "teaches": LONG["teaches"],
        "base": {**TINY_LESSON_BASE, "train.epochs": 50, "train.max_seconds": 300},
        "runs": [{"name": "first"}, {"name": "second"}],
        "checks": [check],
    }))


def write_earlier_runs(root: Path) -> None:
    """A finished run of Ada's and one of Bob's, as an earlier session left them."""
    store = RunStore(root)
    for who, name in EARLIER.items():
        store.create(RunConfig().with_overrides({"name": name}), owner=who, status="finished")


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[AppServer]:
    lessons, runs = tmp_path_factory.mktemp("lessons"), tmp_path_factory.mktemp("runs")
    write_lessons(lessons)
    write_earlier_runs(runs)
    server = AppServer(runs, tmp_path_factory.mktemp("server") / "streamlit.log",
                       env={"SSL_STUDIO_LESSONS": str(lessons),
                            "SSL_STUDIO_INSTRUCTOR_TOKEN": TOKEN})
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- what is on disk -------------------------------------------------------------------------
def summary(app: AppServer, run_id: str) -> dict:
    try:
        return json.loads((app.runs_dir / run_id / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def config(app: AppServer, run_id: str) -> dict:
    return json.loads((app.runs_dir / run_id / "config.json").read_text())


def runs_on_disk(app: AppServer) -> set[str]:
    return {p.name for p in app.runs_dir.iterdir() if (p / "config.json").exists()}


def owners_on_disk(app: AppServer) -> list[str]:
    return [summary(app, run_id).get("owner") for run_id in runs_on_disk(app)]


def lesson_runs(app: AppServer, lesson: str) -> dict[str, str]:
    """Run name (``first``) -> run id of the lesson's runs on disk."""
    prefix = f"{lesson}: "
    return {config(app, r)["name"][len(prefix):]: r for r in runs_on_disk(app)
            if config(app, r)["name"].startswith(prefix)}


def wait_until_idle(app: AppServer) -> None:
    """No run of an earlier test still queued or going."""
    ui.wait_until(lambda: all(summary(app, r).get("status") in ui.ENDED
                              for r in runs_on_disk(app)), STOP_S, "earlier runs to end")


# -- the pages -------------------------------------------------------------------------------
def sidebar(page):  # noqa: ANN001, ANN201
    return page.get_by_test_id("stSidebar")


def main(page):  # noqa: ANN001, ANN201
    return page.get_by_test_id("stMainBlockContainer")


def stop_run(page, app: AppServer, run_id: str) -> None:  # noqa: ANN001
    """Press the run's Stop (or Cancel) until the run has ended on disk (a run still loading
    may need a second press)."""
    def ended() -> bool:
        if summary(app, run_id).get("status") in ui.ENDED:
            return True
        button = ui.main_button(page, "Stop|Cancel")
        if button.count():
            button.first.click(timeout=5_000)
        return False

    ui.wait_until(ended, STOP_S, f"run {run_id} to end", interval=5.0)


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


# -- the Train page's augmentation panel -----------------------------------------------------
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


# -- the Train page's budget and run name ----------------------------------------------------
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


# -- participants ----------------------------------------------------------------------------
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


# -- the Lessons page ------------------------------------------------------------------------
def open_lessons(page, url: str, who: str, extra: str = "") -> None:  # noqa: ANN001
    page.goto(f"{url}/lessons?who={who}{extra}")
    ui.picker(page, "Lesson").wait_for(state="visible", timeout=60_000)


def test_lesson_picker(app, visit):
    page = visit(app.url, "ada")
    open_lessons(page, app.url, "ada")
    heading = main(page).get_by_role("heading", name=ASKED["title"])
    heading.wait_for(timeout=30_000)
    assert main(page).get_by_text(ASKED["question"]).count() == 1
    assert ui.picker_text(page, "Lesson") == ASKED["title"]

    ui.pick(page, LONG["title"], label="Lesson")
    main(page).get_by_role("heading", name=LONG["title"]).wait_for(timeout=30_000)
    ui.wait_until(lambda: ui.url_param(page, "lesson") == "long", 20, "the lesson in the URL")
    main(page).get_by_text(LONG["teaches"]).wait_for(timeout=20_000)
    ui.wait_until(lambda: heading.count() == 0
                  and main(page).get_by_text(ASKED["question"]).count() == 0, 20,
                  "the other lesson's title and question to go")
    ui.wait_until(lambda: ui.main_button(page, "Run this lesson").is_enabled(), 20,
                  "the Run button enabled: no question to answer first")

    page.reload()  # the URL keeps the lesson
    main(page).get_by_role("heading", name=LONG["title"]).wait_for(timeout=60_000)
    assert ui.picker_text(page, "Lesson") == LONG["title"]
    ui.pick(page, ASKED["title"], label="Lesson")
    heading.wait_for(timeout=30_000)
    ui.wait_until(lambda: ui.url_param(page, "lesson") == "asked", 20, "the lesson in the URL")
    ui.wait_until(lambda: ui.main_button(page, "Run this lesson").is_disabled(), 20,
                  "the Run button disabled: its question comes first")


def test_stop_a_running_lesson(app, visit):
    wait_until_idle(app)
    page = visit(app.url, "ada")
    open_lessons(page, app.url, "ada", "&lesson=long")
    main(page).get_by_role("heading", name=LONG["title"]).wait_for(timeout=30_000)
    ui.main_button(page, "Run this lesson").click()
    stop = ui.main_button(page, "Stop")
    stop.wait_for(state="visible", timeout=60_000)
    first = ui.wait_until(lambda: lesson_runs(app, "long").get("first"), START_S,
                          "the lesson's first run")
    try:
        ui.wait_until(lambda: summary(app, first).get("status") == "running", START_S,
                      "the first run to be running")
        stop.click()
        main(page).get_by_text("The lesson was stopped before all its runs finished").wait_for(
            timeout=STOP_S * 1000)
    finally:
        ui.wait_until(lambda: summary(app, first).get("status") in ui.ENDED, STOP_S,
                      "the lesson's run to end")
    runs = lesson_runs(app, "long")
    assert list(runs) == ["first"], "the second run never started"
    assert summary(app, first)["status"] == "stopped"
    assert main(page).get_by_text("Not started.").count() == 1
    assert ui.main_button(page, "Stop").count() == 0
    assert ui.main_button(page, "Run it again").is_enabled()
    assert main(page).get_by_text(re.compile(r"^Outcomes: ")).count() == 0


def test_instructor_clears_the_rooms_predictions(app, visit):
    record_answer(app.runs_dir, "asked", "Ada", "first")
    record_answer(app.runs_dir, "asked", "Grace", "second")
    ada = visit(app.url, "Ada")
    open_lessons(ada, app.url, "Ada", "&lesson=asked")
    main(ada).get_by_text("Your prediction: first").wait_for(timeout=30_000)
    assert main(ada).get_by_role("button", name=re.compile("Clear the room")).count() == 0

    teacher = visit(app.url, "Teacher")
    open_lessons(teacher, app.url, "Teacher", f"&lesson=asked&token={TOKEN}")
    room = main(teacher).get_by_text(re.compile(r"The room's predictions \(2 answers\)"))
    room.wait_for(timeout=30_000)
    main(teacher).get_by_text("Who answered what").click()
    main(teacher).get_by_text("Ada: first").wait_for(timeout=20_000)
    main(teacher).get_by_role("button", name=re.compile("Clear the room's predictions")).click()
    main(teacher).get_by_text(re.compile(r"The room's predictions \(0 answers\)")).wait_for(
        timeout=30_000)
    assert answers(app.runs_dir, "asked") == {}
    ui.wait_until(lambda: main(teacher).get_by_text("Ada: first").count() == 0, 20,
                  "the answers to go from the instructor's list")

    ada.reload()  # Ada's prediction is gone: she is asked again before the lesson runs
    main(ada).get_by_text("Choose an answer and record it").wait_for(timeout=60_000)
    assert main(ada).get_by_text("Your prediction:").count() == 0
    assert ui.main_button(ada, "Run this lesson").is_disabled()
