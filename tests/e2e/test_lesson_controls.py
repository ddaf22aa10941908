"""The Lessons page's controls in a real browser: the lesson picker, Stop while a lesson runs,
and the instructor clearing the room's predictions. One server for the module
(``tests.e2e.room``) with a lessons folder made by the test (``SSL_STUDIO_LESSONS``): a lesson
with a question and a lesson long enough to be stopped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine.predictions import answers, record_answer
from tests.e2e import room, ui
from tests.e2e.app_server import AppServer
from tests.e2e.room import (
    START_S,
    STOP_S,
    TOKEN,
    config,
    main,
    runs_on_disk,
    summary,
    wait_until_idle,
)
from tests.fixtures.lessons import TINY_LESSON_BASE

pytestmark = pytest.mark.e2e

ASKED = {"title": "A lesson with a question", "question": "Which run ends with the higher kNN?"}
LONG = {"title": "A lesson long enough to stop",
        "teaches": "Two runs of many epochs, stopped by the test before they end."}


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[AppServer]:
    lessons = tmp_path_factory.mktemp("lessons")
    write_lessons(lessons)
    with room.serve(tmp_path_factory, {"SSL_STUDIO_LESSONS": str(lessons)}) as server:
        yield server


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


def lesson_runs(app: AppServer, lesson: str) -> dict[str, str]:
    """Run name (``first``) -> run id of the lesson's runs on disk."""
    prefix = f"{lesson}: "
    return {config(app, r)["name"][len(prefix):]: r for r in runs_on_disk(app)
            if config(app, r)["name"].startswith(prefix)}


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
