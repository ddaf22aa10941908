"""The Lessons page under Streamlit's AppTest: it renders, picking a lesson shows its text, and
a lesson run from the page ends with its outcomes marked reproduced or not, with numbers."""

from __future__ import annotations

import time

import pytest
import yaml

from engine import lessons
from tests.fixtures.app import APP, TIMEOUT, no_exception, texts
from tests.fixtures.lessons import TINY_LESSON_BASE

st_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = st_testing.AppTest

PAGE = "app/pages/lessons.py"
TINY = {**TINY_LESSON_BASE, "eval.snapshot_size": 128}


pytestmark = pytest.mark.usefixtures("no_umap_warm_up")


@pytest.fixture
def tiny_lessons(tmp_path, monkeypatch):
    """A lessons folder holding one tiny lesson (two 4-step runs) next to a copy of a real one."""
    real = sorted(lessons.LESSONS_DIR.glob("*.yaml"))
    folder = lessons_folder(tmp_path, monkeypatch, "a_tiny", {
        "title": "A tiny lesson",
        "teaches": "Two runs of four steps. One check holds, one cannot. It is for the tests.",
        "base": TINY,
        "runs": [{"name": "first", "set": {"method.name": "simclr"}},
                 {"name": "second", "set": {"method.name": "simsiam"}}],
        "checks": [
            {"run": "first", "metric": "status", "op": "==", "value": "finished",
             "says": "the first run finishes"},
            {"run": "second", "metric": "knn_top1", "op": ">", "than": {"run": "first"},
             "margin": 2.0, "says": "the second run is impossibly better"},
        ],
    })
    if real:
        (folder / real[0].name).write_text(real[0].read_text())
    return folder


def lessons_folder(tmp_path, monkeypatch, name: str, lesson: dict):
    """A lessons folder holding ``lesson`` as ``name.yaml``, served in place of the real one."""
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(lesson))
    monkeypatch.setattr(lessons, "LESSONS_DIR", folder)
    return folder


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["who"] = "tester"  # a participant's name, asked once per browser
    at.run()
    at.switch_page(PAGE).run()
    return at


def test_lessons_page_renders_the_real_lessons(runs_dir):
    at = open_page()
    no_exception(at)
    names = lessons.list_lessons()
    picker = at.selectbox(key="lesson_name")
    assert list(picker.options) == [lessons.load_lesson(n).title for n in names]
    for name in names[:2]:
        picker.set_value(name).run()
        no_exception(at)
        lesson = lessons.load_lesson(name)
        shown = texts(at)
        assert lesson.title in shown
        assert lesson.teaches.split(".")[0] in shown
        # a lesson that asks a question keeps its expected outcomes back until answered
        asks = lesson.predict is not None
        assert (lesson.checks[0].describe() in shown) != asks, name
        assert ("Shown once you have recorded your prediction" in shown) == asks, name
        assert at.query_params["lesson"] in (name, [name])


def test_a_lesson_run_from_the_page_shows_its_outcomes(runs_dir, tiny_lessons):
    at = open_page()
    no_exception(at)
    at.selectbox(key="lesson_name").set_value("a_tiny").run()
    assert "Two runs of four steps" in texts(at)
    at.button(key="lesson_run").click().run()
    no_exception(at)

    from app.lesson_runs import runner_of

    runner = runner_of("a_tiny")
    assert runner is not None
    deadline = time.time() + 240
    while runner.alive and time.time() < deadline:
        time.sleep(0.5)
    assert not runner.alive, "the tiny lesson did not finish in 4 minutes"
    at.run()
    no_exception(at)
    shown = texts(at)
    assert "Outcomes: 1 of 2 reproduced" in shown
    assert any("Reproduced:" in s.value and "first run finishes" in s.value for s in at.success)
    failed = [e.value for e in at.error if "Not reproduced:" in e.value]
    assert failed and "impossibly better" in failed[0] and "knn_top1 of second" in failed[0]
    # both runs are drawn side by side, with their diagnostics
    assert "#### first" in shown and "#### second" in shown
    assert "Collapse diagnostics" in shown
    # the diagnostics panel of each run carries the spectrum and the pair-similarity histograms
    spectra = [e for e in at.expander if e.label == "Singular values and pair similarities"]
    assert len(spectra) == 2
    charts = at.get("plotly_chart")
    assert len(charts) >= 2 * 5, len(charts)  # loss, kNN, collapse curve, spectrum, pairs
    assert {m.label for m in at.metric} >= {"Step", "Loss", "kNN top-1"}
    # a reload (a fresh session) finds the finished lesson again
    again = open_page()
    again.selectbox(key="lesson_name").set_value("a_tiny").run()
    no_exception(again)
    assert "Outcomes: 1 of 2 reproduced" in texts(again)


@pytest.fixture
def asked_lesson(tmp_path, monkeypatch):
    """A lessons folder with one tiny lesson that poses a question whose answer is measured."""
    return lessons_folder(tmp_path, monkeypatch, "asked", {
        "title": "A tiny lesson with a question",
        "teaches": "Two runs of four steps. One is asked about first. It is for the tests.",
        "base": TINY,
        "runs": [{"name": "first", "set": {"method.name": "simclr"}},
                 {"name": "second", "set": {"method.name": "simsiam"}}],
        "checks": [{"run": "first", "metric": "status", "op": "==", "value": "finished",
                    "says": "the first run finishes"}],
        "explains": "Both runs finish; what the answer means is said here, after the runs.",
        "predict": {"question": "Which run ends with the more steps per image?",
                    "answer": {"highest": "knn_top1"}},
    })


def test_predict_then_run(runs_dir, asked_lesson, monkeypatch):
    """The Run button waits for a recorded prediction, and the expected outcomes (which answer
    the question) stay hidden until then; after the runs the page shows the participant's
    answer against the measured one and what it means; the instructor sees the room's
    answers."""
    from engine.predictions import answer_of, record_answer

    monkeypatch.setenv("SSL_STUDIO_INSTRUCTOR_TOKEN", "s3cret")  # read when the server starts
    at = open_page()
    no_exception(at)
    assert "Which run ends with the more steps per image?" in texts(at)
    assert "the first run finishes" not in texts(at), "the outcomes wait for the prediction"
    assert "Shown once you have recorded your prediction below." in texts(at)
    assert at.button(key="lesson_run").disabled, "no running before a prediction"
    assert at.button(key="predict_save_asked").disabled, "nothing chosen yet"
    at.radio(key="predict_asked").set_value("second").run()
    at.button(key="predict_save_asked").click().run()
    no_exception(at)
    assert answer_of(runs_dir, "asked", "tester") == "second"
    assert "Your prediction: **second**" in texts(at)
    assert "- the first run finishes" in texts(at), "the expected outcomes, once predicted"
    assert "after the runs" not in texts(at), "what it means waits for the outcome"
    assert not at.button(key="lesson_run").disabled
    record_answer(runs_dir, "asked", "Ada", "first")  # another participant, another process
    at.button(key="lesson_run").click().run()
    no_exception(at)

    from app.lesson_runs import runner_of

    runner = runner_of("asked")
    deadline = time.time() + 240
    while runner.alive and time.time() < deadline:
        time.sleep(0.5)
    assert not runner.alive, "the tiny lesson did not finish in 4 minutes"
    at.run()
    no_exception(at)
    metrics = runner.metrics()
    right = "first" if metrics["first"]["knn_top1"] >= metrics["second"]["knn_top1"] else "second"
    shown = texts(at)
    assert "Your prediction against the outcome" in shown
    verdict = [s.value for s in at.success] + [w.value for w in at.warning]
    mine = [v for v in verdict if "You predicted second" in v]
    assert mine and f"outcome: {right}".lower() in mine[0].lower(), verdict
    assert ("right." in mine[0]) == (right == "second")
    assert f"{metrics['first']['knn_top1']:.3f}" in mine[0], "the measured numbers are shown"
    assert "The room's predictions** (2 answers)" in shown
    assert "- first" in shown and ": 1 (50%)" in shown
    assert "Both runs finish; what the answer means is said here, after the runs." in shown

    assert "Who answered what" not in [e.label for e in at.expander], "for the instructor"
    # the instructor sees who answered what, and may clear the round
    teacher = AppTest.from_file(APP, default_timeout=TIMEOUT)
    teacher.query_params["who"] = "teacher"
    teacher.query_params["token"] = "s3cret"
    teacher.run()
    teacher.switch_page(PAGE).run()
    no_exception(teacher)
    shown = texts(teacher)
    assert "- Ada: first" in shown and "- tester: second" in shown
    teacher.button(key="predict_clear_asked").click().run()
    no_exception(teacher)
    assert answer_of(runs_dir, "asked", "tester") is None
    assert "The room's predictions** (0 answers)" in texts(teacher)
