"""Collapse-lab lessons: every YAML loads and validates; the fast lessons reproduce their
expected outcomes in the default suite and all of them behind ``-m slow``, through the same
code path as ``python -m engine lesson NAME``; the CLI lists lessons and fails when a check
does not hold."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine import lessons
from engine.lesson_metrics import METRICS, run_metrics
from engine.lessons import (
    Check,
    evaluate_checks,
    list_lessons,
    load_lesson,
    run_lesson_cli,
)
from tests.fixtures.lessons import TINY_LESSON_BASE

ROOT = Path(__file__).resolve().parents[1]

#: the lessons the collapse lab promises (the issue's list), and what the alarm must say on the
#: collapsing run: (op, value) of its ``alarm`` check. SimSiam without stop-gradient collapses to
#: nearly one point whose remaining spread lies along one or two directions, so the alarm may
#: name either kind; the lesson checks that it fires and measures the rest.
REQUIRED = {
    "simsiam_stop_gradient": ("!=", "none"),
    "byol_predictor": ("==", "complete"),
    "colour_shortcut": None,
    "supcon_vs_cross_entropy": None,
    "simclr_temperature": None,
    "dimensional_collapse": ("==", "dimensional"),
    "triplet_mining": ("==", "complete"),
    "margin_collapse": ("==", "complete"),
    "rotation_needs_an_upright": None,
    "fixmatch_threshold": None,
    "fixmatch_few_labels": None,
    "fixmatch_ten_labels": None,
    "mim_mask_ratio": None,
    "moco_queue_momentum": ("==", "dimensional"),
    "sesemi_ten_labels": None,
    "sesemi_four_labels": None,
}
#: all fast lessons together, in training steps: at 16 px with the narrow CNN a 2-core CPU takes
#: about 15 steps a second when idle, so they stay within about 3 minutes with evaluations;
#: their ``max_seconds`` caps only bind on a busy machine
FAST_STEPS = 1500


def _all() -> list[str]:
    return list_lessons()


def _fast() -> list[str]:
    return [n for n in list_lessons() if load_lesson(n).fast]


def _budget(name: str) -> float:
    lesson = load_lesson(name)
    return sum(lesson.config(r).train.max_seconds for r in lesson.run_names())


# -- every YAML ------------------------------------------------------------------------------
def test_the_required_lessons_exist():
    assert set(REQUIRED) <= set(list_lessons())


@pytest.mark.parametrize("name", _all())
def test_lesson_loads_and_validates(name):
    lesson = load_lesson(name)
    assert lesson.title and lesson.teaches.count(".") >= 2, "a few sentences to read"
    assert len(lesson.runs) >= 2 and len(lesson.checks) >= 2
    for run_name in lesson.run_names():
        cfg = lesson.config(run_name)
        # a lesson must end on its own on a CPU: a step budget (epochs, the same result on a
        # loaded machine) or a time budget on every run that trains
        trains = cfg.train.epochs > 0 or cfg.train.max_seconds > 0
        assert not trains or cfg.train.epochs > 0 or 0 < cfg.train.max_seconds <= 150, (
            run_name, cfg.train.max_seconds)
    assert _budget(name) <= 270, "the whole lesson fits in 5 minutes with evaluations"
    compared = [c for c in lesson.checks if c.than is not None and c.metric != "alarm"]
    assert compared, "at least one check compares two runs"


@pytest.mark.parametrize("name", [n for n in _all() if load_lesson(n).predict is not None])
def test_a_lesson_that_asks_explains_after_the_runs(name):
    """Predict, observe, explain: the question's answer belongs in ``explains`` (shown after
    the runs), so ``teaches`` (shown before the prediction) must leave room for a guess."""
    lesson = load_lesson(name)
    assert lesson.explains.count(".") >= 2, "a few sentences on what the outcome means"


@pytest.mark.parametrize("name,expected", [(n, k) for n, k in REQUIRED.items() if k])
def test_collapse_lessons_check_the_alarm(name, expected):
    """The alarm must fire on the collapsing run and stay silent on its healthy twin."""
    lesson = load_lesson(name)
    alarms = [(c.run, c.op, c.value) for c in lesson.checks if c.metric == "alarm"]
    collapsing = [run for run, op, value in alarms if (op, value) == expected]
    healthy = [run for run, op, value in alarms if (op, value) == ("==", "none")]
    assert collapsing and healthy and set(collapsing).isdisjoint(healthy), alarms


def _steps(name: str) -> int:
    """The most training steps a lesson can take (its epochs; max_seconds may stop it sooner)."""
    lesson = load_lesson(name)
    total = 0
    for run_name in lesson.run_names():
        cfg = lesson.config(run_name)
        assert cfg.data.train_size, f"{name}: a fast lesson fixes data.train_size"
        total += int(cfg.train.epochs * (cfg.data.train_size // cfg.train.batch_size))
    return total


def test_fast_lessons_fit_the_default_suite():
    fast = _fast()
    assert fast, "at least one lesson runs in the default suite"
    assert sum(_steps(n) for n in fast) <= FAST_STEPS
    for name in fast:
        assert _budget(name) <= 240, name


# -- running them ----------------------------------------------------------------------------
def _reproduce(name: str, runs_dir: Path, capsys) -> None:  # noqa: ANN001
    reason = load_lesson(name).skip_reason()
    if reason is not None:  # e.g. pretrained weights this machine does not have
        pytest.skip(reason)
    rc = run_lesson_cli(name, str(runs_dir), quiet=True)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(lines) == len(load_lesson(name).checks)
    assert rc == 0 and all(line.startswith("[PASS]") for line in lines), out
    predict = load_lesson(name).predict
    if predict is not None:  # the question's answer is decided by what was measured
        answer = re.search(r"^Answer: (.+) \(", out, re.MULTILINE)
        assert answer and answer.group(1) in predict.options, out
    explains = load_lesson(name).explains
    if explains:  # what the outcome means comes after the checks, not before the runs
        assert out.index(explains) > out.index(lines[-1]), out


@pytest.mark.parametrize("name", _fast())
def test_fast_lesson_reproduces(name, tmp_path, capsys):
    _reproduce(name, tmp_path / "runs", capsys)


@pytest.mark.slow
@pytest.mark.parametrize("name", _all())
def test_lesson_reproduces(name, tmp_path, capsys):
    _reproduce(name, tmp_path / "runs", capsys)


# -- validation and checks on constructed input --------------------------------------------
def write_lesson(tmp_path: Path, checks: list[dict], **extra) -> Path:  # noqa: ANN003
    d = {
        "title": "A tiny lesson",
        "teaches": "Nothing much. It exists for the tests. It runs in seconds.",
        "base": TINY_LESSON_BASE,
        "runs": [{"name": "a", "set": {"method.name": "simclr"}},
                 {"name": "b", "set": {"method.name": "simclr", "method.temperature": 1.0}}],
        "checks": checks,
        **extra,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


@pytest.mark.parametrize("check,message", [
    ({"run": "a", "metric": "no_such_metric", "op": ">", "value": 0}, "unknown metric"),
    ({"run": "c", "metric": "knn_top1", "op": ">", "value": 0}, "unknown run"),
    ({"run": "a", "metric": "knn_top1", "op": "~", "value": 0}, "unknown operator"),
    ({"run": "a", "metric": "knn_top1", "op": ">"}, "exactly one of value or than"),
    ({"run": "a", "metric": "knn_top1", "op": ">", "value": 0, "than": {"run": "b"}},
     "exactly one of value or than"),
    ({"run": "a", "metric": "knn_top1", "op": ">", "value": 0, "colour": 1}, "bad check"),
])
def test_bad_checks_are_readable_errors(tmp_path, check, message):
    with pytest.raises(ValueError, match=message):
        load_lesson(write_lesson(tmp_path, [check]))


def test_bad_settings_and_shapes_are_readable_errors(tmp_path):
    ok = [{"run": "a", "metric": "knn_top1", "op": ">", "value": 0}]
    path = write_lesson(tmp_path, ok)
    d = yaml.safe_load(path.read_text())
    d["runs"][0]["set"]["train.no_such_key"] = 1
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(ValueError, match="no_such_key"):
        load_lesson(path)
    with pytest.raises(ValueError, match="unique"):
        load_lesson(write_lesson(tmp_path, ok, runs=[{"name": "a"}, {"name": "a"}]))
    with pytest.raises(ValueError, match="missing teaches"):
        load_lesson(write_lesson(tmp_path, ok, teaches=""))
    with pytest.raises(ValueError, match="unknown lesson"):
        load_lesson("no_such_lesson")
    assert load_lesson(write_lesson(tmp_path, ok)).name == "tiny"
    assert load_lesson(write_lesson(tmp_path, ok)).explains == ""
    path = write_lesson(tmp_path, ok)  # a folded YAML block, as the lessons write it
    path.write_text(path.read_text() + "explains: >\n  First line\n  of one paragraph.\n\n"
                    "  A second one.\n")
    assert load_lesson(path).explains == "First line of one paragraph.\n\nA second one."


def test_evaluate_checks_with_margins_and_missing_metrics():
    metrics = {"a": {"knn_top1": 0.50, "alarm": "none"}, "b": {"knn_top1": 0.40}}
    lesson = lessons.Lesson("t", "t", "t", [{"name": "a"}, {"name": "b"}], [
        Check("a", "knn_top1", ">", than={"run": "b"}, margin=0.05),  # 0.50 > 0.45
        Check("a", "knn_top1", ">", than={"run": "b"}, margin=0.15),  # 0.50 > 0.55: no
        Check("a", "alarm", "==", value="none"),
        Check("b", "alarm", "==", value="complete"),  # b has no diagnostics: not passed
        Check("b", "knn_top1", "<", than={"run": "a", "metric": "knn_top1"}),
    ])
    results = evaluate_checks(lesson, metrics)
    assert [r.passed for r in results] == [True, False, True, False, True]
    assert results[0].right == pytest.approx(0.45)
    assert results[1].line().startswith("[FAIL]") and "0.500 > 0.550" in results[1].line()
    assert "None" in results[3].line()


def test_a_tiny_lesson_measures_every_metric(tmp_path, capsys):
    checks = [{"run": "a", "metric": "status", "op": "==", "value": "finished"}]
    path = write_lesson(tmp_path, checks, base={**TINY_LESSON_BASE, "eval.snapshot_size": 128})
    lesson = load_lesson(path)
    runs, results = lessons.run_lesson(lesson, lessons.RunStore(tmp_path / "runs"))
    assert results[0].passed
    m = run_metrics(runs["a"])
    assert set(METRICS) <= set(m), set(METRICS) - set(m)
    assert {"knn_top1", "knn_colour"} <= set(m)
    assert m["alarm"] in ("none", "complete", "dimensional")
    assert 0 < m["rank_z_fraction"] <= 1 and 0 < m["std_ratio"] < 2
    assert "classifier_top1" not in m, "SimCLR has no classifier of its own"


def test_a_classifier_and_its_step_logs_are_measured(tmp_path):
    """A method with its own classifier reports that classifier's test accuracy; a method's
    step logs (cross-entropy's train_acc) are measured over the first and last tenth."""
    checks = [{"run": "a", "metric": "classifier_top1", "op": ">=", "value": 0},
              {"run": "a", "metric": "log_train_acc_last", "op": ">=", "value": 0}]
    path = write_lesson(tmp_path, checks, runs=[
        {"name": "a", "set": {"method.name": "cross_entropy", "method.labelled_only": True,
                              "data.labels_per_class": 4}},
        {"name": "b", "set": {"method.name": "simclr"}}])
    runs, results = lessons.run_lesson(load_lesson(path), lessons.RunStore(tmp_path / "runs"))
    assert all(r.passed for r in results), [r.line() for r in results]
    m = run_metrics(runs["a"])
    assert 0 <= m["classifier_top1"] <= 1 and 0 <= m["log_train_acc_first"] <= 1
    assert "log_time_last" not in m, "the recorder's clock is not a log"
    last_eval = runs["a"].metrics("eval")[-1]
    assert m["classifier_top1"] == last_eval["classifier_top1"]
    with pytest.raises(ValueError, match="unknown metric"):
        load_lesson(write_lesson(tmp_path, [{"run": "a", "metric": "log_train_acc",
                                             "op": ">", "value": 0}]))


# -- the command line ------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_lists_the_lessons():
    out = _cli("list", "lessons")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == list_lessons()
    assert set(REQUIRED) <= set(out.stdout.split())


def test_cli_lesson_exits_non_zero_when_a_check_fails(tmp_path):
    checks = [
        {"run": "a", "metric": "status", "op": "==", "value": "finished",
         "says": "run a finishes"},
        {"run": "a", "metric": "knn_top1", "op": ">", "value": 1.5,
         "says": "kNN accuracy above 150 %"},
    ]
    path = write_lesson(tmp_path, checks)
    out = _cli("lesson", str(path), "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "[PASS] run a finishes" in out.stdout
    assert "[FAIL] kNN accuracy above 150 %" in out.stdout
    assert "1 of 2 expected outcomes reproduced" in out.stdout
    assert _cli("lesson", "no_such_lesson").returncode == 2


def test_cli_lesson_settings_are_forced_on_every_run(tmp_path):
    """``python -m engine lesson NAME seed=1``: the lesson again with another seed."""
    checks = [{"run": "a", "metric": "status", "op": "==", "value": "finished"}]
    path = write_lesson(tmp_path, checks, predict={"question": "Which ends higher?",
                                                   "answer": {"highest": "knn_top1"}})
    runs = tmp_path / "runs"
    out = _cli("lesson", str(path), "seed=3", "--runs-dir", str(runs), "--quiet")
    assert out.returncode == 0, out.stdout + out.stderr
    seeds = [json.loads(p.read_text())["seed"] for p in runs.glob("*/config.json")]
    assert seeds == [3, 3]
    assert "Predict: Which ends higher? (a / b)" in out.stdout
    assert re.search(r"Answer: [ab] \(the run with the highest knn_top1\)", out.stdout)
    bad = _cli("lesson", str(path), "train.no_such_key=1", "--runs-dir", str(runs))
    assert bad.returncode != 0 and "no_such_key" in bad.stdout + bad.stderr
