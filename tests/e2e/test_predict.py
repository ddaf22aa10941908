"""Predict, then run, in a real browser: on the Lessons page a participant chooses an answer
to a lesson's question, records it (the Run button waits for it), runs the lesson and sees
their answer against the measured outcome; a second participant's answer shows in the room's
count, and the instructor sees who answered what.

The server reads its lessons from a folder made by the test (``SSL_STUDIO_LESSONS``) holding
one tiny lesson: two runs of a few steps whose outcome is measured, not written down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e import ui
from tests.e2e.app_server import AppServer
from tests.fixtures.lessons import TINY_LESSON_BASE

pytestmark = pytest.mark.e2e

LESSON_DONE_S = 240  # two 4-step runs; a busy shared machine takes its time
TOKEN = "e2e-instructor"
QUESTION = "Which run ends with the higher kNN?"
EXPLAINS = "What the outcome means is said after the runs."


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[AppServer]:
    lessons = tmp_path_factory.mktemp("lessons")
    (lessons / "asked.yaml").write_text(yaml.safe_dump({
        "title": "A tiny lesson with a question",
        "teaches": "Two runs of four steps. Predict first, then run. It is for the tests.",
        "base": {**TINY_LESSON_BASE, "eval.snapshot_size": 128},
        "runs": [{"name": "first", "set": {"method.name": "simclr"}},
                 {"name": "second", "set": {"method.name": "simsiam"}}],
        "checks": [{"run": "first", "metric": "status", "op": "==", "value": "finished",
                    "says": "the first run finishes"}],
        "explains": EXPLAINS,
        "predict": {"question": QUESTION, "answer": {"highest": "knn_top1"}},
    }))
    app = AppServer(tmp_path_factory.mktemp("runs"),
                    tmp_path_factory.mktemp("server") / "streamlit.log",
                    env={"SSL_STUDIO_LESSONS": str(lessons),
                         "SSL_STUDIO_INSTRUCTOR_TOKEN": TOKEN})
    app.start()
    try:
        yield app
    finally:
        app.stop()


def _open_lessons(page, url: str, who: str, token: str = "") -> None:
    extra = f"&token={token}" if token else ""
    page.goto(f"{url}/lessons?who={who}{extra}")
    page.get_by_text(QUESTION).wait_for(state="visible", timeout=60_000)


def _main(page):
    return page.get_by_test_id("stMainBlockContainer")


def _option(page, name: str):
    """The prediction's radio option ``name``."""
    return _main(page).get_by_test_id("stRadio").get_by_text(name, exact=True)


def test_predict_run_and_see_the_answer_against_the_outcome(server, visit):
    url = server.url
    ada = visit(url, "Ada")
    _open_lessons(ada, url, "Ada")
    run = ui.main_button(ada, "Run this lesson")
    assert run.is_disabled(), "the lesson waits for a prediction"

    main = _main(ada)
    expected = main.get_by_text("the first run finishes")
    assert expected.count() == 0, "the expected outcomes answer the question: not before it"
    _option(ada, "second").click()
    main.get_by_role("button", name="Record my prediction").click()
    ui.wait_until(lambda: main.get_by_text(re.compile(r"Your prediction: second")).count(), 30,
                  "the recorded prediction")
    ui.wait_until(lambda: expected.count(), 30, "the expected outcomes once predicted")
    assert main.get_by_text(EXPLAINS).count() == 0, "what it means waits for the runs"
    ui.wait_until(lambda: not run.is_disabled(), 30, "the Run button to be enabled")
    stored = json.loads((server.runs_dir / "_lesson_answers" / "asked.json").read_text())
    assert stored["Ada"]["answer"] == "second"

    # a second participant, in a browser of their own, predicts the other run
    grace = visit(url, "Grace")
    _open_lessons(grace, url, "Grace")
    _option(grace, "first").click()
    _main(grace).get_by_role("button", name="Record my prediction").click()
    ui.wait_until(lambda: _main(grace).get_by_text(re.compile(r"Your prediction: first")).count(),
                  30, "Grace's recorded prediction")

    run.click()
    verdict = main.get_by_test_id("stAlert").filter(has_text=re.compile(r"You predicted second"))
    ui.wait_until(lambda: verdict.count(), LESSON_DONE_S, "the answer against the outcome")
    text = verdict.first.inner_text()
    outcome = re.search(r"outcome: (first|second)", text, re.IGNORECASE)
    assert outcome, text
    right = outcome.group(1)
    assert ("right." in text) == (right == "second"), text
    assert re.search(r"first \d\.\d{3}, second \d\.\d{3}", text), "the measured kNN is shown"
    # the outcome is the run the runs' own numbers name: read them back from disk
    knn = {}
    for cfg in server.runs_dir.glob("*/config.json"):
        name = json.loads(cfg.read_text())["name"].split(": ", 1)[1]
        knn[name] = json.loads((cfg.parent / "summary.json").read_text())["knn_top1"]
    assert right == max(knn, key=knn.get), (right, knn)
    room = main.get_by_text(re.compile(r"The room's predictions \(2 answers\)"))
    ui.wait_until(lambda: room.count(), 30, "the room's count")
    assert main.get_by_text(EXPLAINS).count() == 1, "what the outcome means, after the runs"
    assert main.get_by_text("Who answered what").count() == 0, "for the instructor only"

    # the instructor sees each participant's answer
    teacher = visit(url, "Teacher")
    _open_lessons(teacher, url, "Teacher", token=TOKEN)
    _main(teacher).get_by_text("Who answered what").click()
    ui.wait_until(lambda: _main(teacher).get_by_text("Ada: second").count()
                  and _main(teacher).get_by_text("Grace: first").count(), 30,
                  "each participant's answer for the instructor")
