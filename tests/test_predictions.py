"""Predict, then run: a lesson's ``predict:`` is validated when the lesson loads, its right
answer is fixed or measured from the runs, and the room's answers are kept on disk, one per
participant, without losing one when several processes answer at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import yaml

from engine import predictions
from engine.lessons import load_lesson
from engine.predictions import (
    Prediction,
    answer_of,
    answers,
    clear_answers,
    parse_prediction,
    record_answer,
    tally,
)
from tests.fixtures.lessons import TINY_LESSON_BASE

RUNS = ["healthy", "collapsed"]


# -- the question ------------------------------------------------------------------------------
def test_a_measured_answer_is_the_run_with_the_extreme_metric():
    p = parse_prediction("t", {"question": "Which collapses?",
                               "answer": {"lowest": "std_ratio"}}, RUNS)
    assert p.options == ("healthy", "collapsed") and p.metric == "std_ratio"
    metrics = {"healthy": {"std_ratio": 0.8}, "collapsed": {"std_ratio": 0.02}}
    assert p.outcome(metrics) == "collapsed"
    highest = parse_prediction("t", {"question": "Which learns?",
                                     "answer": {"highest": "std_ratio"}}, RUNS)
    assert highest.outcome(metrics) == "healthy"
    assert "lowest std_ratio" in p.describe_answer()


def test_an_outcome_waits_for_every_run_to_be_measured():
    p = parse_prediction("t", {"question": "Q?", "answer": {"highest": "knn_top1"}}, RUNS)
    assert p.outcome({"healthy": {"knn_top1": 0.5}}) is None
    assert p.outcome({"healthy": {"knn_top1": 0.5}, "collapsed": {"knn_top1": None}}) is None


def test_a_fixed_answer_among_free_options():
    p = parse_prediction("t", {"question": "What happens to the loss?",
                               "options": ["it falls", "it rises"], "answer": "it falls"}, RUNS)
    assert p.outcome({}) == "it falls" and p.metric is None


@pytest.mark.parametrize("spec,message", [
    ({"options": RUNS, "answer": "healthy"}, "needs a question"),
    ({"question": "Q?", "answer": "nobody"}, "must be one of its options"),
    ({"question": "Q?"}, "must be one of its options"),
    ({"question": "Q?", "options": ["only one"], "answer": "only one"}, "at least 2"),
    ({"question": "Q?", "options": ["a", "a"], "answer": "a"}, "unique"),
    ({"question": "Q?", "answer": {"highest": "no_such_metric"}}, "unknown metric"),
    ({"question": "Q?", "answer": {"best": "knn_top1"}}, "highest: METRIC"),
    ({"question": "Q?", "options": ["yes", "no"], "answer": {"highest": "knn_top1"}},
     "every option must be a run name"),
    ({"question": "Q?", "answer": "healthy", "hint": "x"}, "unknown key"),
])
def test_bad_questions_are_readable_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_prediction("t", spec, RUNS)


def test_a_lesson_file_with_a_question(tmp_path):
    d = {"title": "T", "teaches": "One. Two. Three.", "base": TINY_LESSON_BASE,
         "runs": [{"name": "a", "set": {"method.name": "simclr"}},
                  {"name": "b", "set": {"method.name": "simsiam"}}],
         "checks": [{"run": "a", "metric": "status", "op": "==", "value": "finished"}],
         "predict": {"question": "Which ends higher?", "answer": {"highest": "knn_top1"}}}
    path = tmp_path / "asked.yaml"
    path.write_text(yaml.safe_dump(d))
    lesson = load_lesson(path)
    assert isinstance(lesson.predict, Prediction) and lesson.predict.options == ("a", "b")
    d["predict"]["answer"] = "c"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(ValueError, match="lesson asked: predict's answer"):
        load_lesson(path)


def test_the_shipped_questions_name_runs_and_metrics():
    from engine.lessons import list_lessons

    asked = [n for n in list_lessons() if load_lesson(n).predict is not None]
    assert len(asked) >= 3, asked


# -- the answer store ------------------------------------------------------------------------
def test_answers_are_kept_per_participant_and_replaced(tmp_path):
    assert answers(tmp_path, "lesson") == {} and answer_of(tmp_path, "lesson", "Ada") is None
    record_answer(tmp_path, "lesson", "Ada", "healthy")
    record_answer(tmp_path, "lesson", "  Grace  ", "collapsed")
    record_answer(tmp_path, "other", "Ada", "collapsed")
    assert answer_of(tmp_path, "lesson", "Ada") == "healthy"
    assert answer_of(tmp_path, "lesson", "Grace") == "collapsed"
    record_answer(tmp_path, "lesson", "Ada", "collapsed")  # changed her mind
    assert answer_of(tmp_path, "lesson", "Ada") == "collapsed"
    assert set(answers(tmp_path, "lesson")) == {"Ada", "Grace"}
    assert tally(tmp_path, "lesson", RUNS) == {"healthy": 0, "collapsed": 2}
    assert answer_of(tmp_path, "other", "Ada") == "collapsed"  # one file per lesson
    clear_answers(tmp_path, "lesson")
    assert answers(tmp_path, "lesson") == {} and answer_of(tmp_path, "other", "Ada")


def test_a_tally_ignores_answers_that_are_no_longer_options(tmp_path):
    record_answer(tmp_path, "lesson", "Ada", "a run since renamed")
    record_answer(tmp_path, "lesson", "", "healthy")  # no name: counted as anonymous
    assert tally(tmp_path, "lesson", RUNS) == {"healthy": 1, "collapsed": 0}
    assert answer_of(tmp_path, "lesson", "") == "healthy"


def test_a_lesson_name_is_never_a_path(tmp_path):
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="not a lesson name"):
            record_answer(tmp_path, bad, "Ada", "x")
    assert not (tmp_path.parent / "escape.json").exists()


def test_a_torn_file_reads_as_no_answers(tmp_path):
    path = predictions.answers_path(tmp_path, "lesson")
    path.parent.mkdir(parents=True)
    path.write_text('{"Ada": {"answ')
    assert answers(tmp_path, "lesson") == {}
    record_answer(tmp_path, "lesson", "Ada", "healthy")
    assert answer_of(tmp_path, "lesson", "Ada") == "healthy"


def _answer_many(root: str, who: str) -> None:
    for i in range(20):
        record_answer(root, "lesson", f"{who}-{i}", "healthy" if i % 2 else "collapsed")


def test_processes_answering_at_once_lose_no_answer(tmp_path: Path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_answer_many, args=(str(tmp_path), f"p{k}")) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(answers(tmp_path, "lesson")) == 80
    assert tally(tmp_path, "lesson", RUNS) == {"healthy": 40, "collapsed": 40}
