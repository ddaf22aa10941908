"""Lessons that chain a second stage to a first run, compare differences between runs, and
skip (with the reason) when the pretrained weights they start from are missing."""

from __future__ import annotations

import pytest
import torch
import yaml

from engine.lessons import evaluate_checks, load_lesson, run_lesson, run_lesson_cli
from engine.train.store import RunStore
from tests.fixtures.tiny_runs import TINIER

BASE = {**TINIER, "train.max_seconds": 0, "train.device": "cpu", "eval.linear_probe": False,
        "eval.diagnostics_every_steps": 0}


def write(tmp_path, lesson: dict):  # noqa: ANN001, ANN201
    path = tmp_path / "lesson.yaml"
    path.write_text(yaml.safe_dump(lesson))
    return path


#: a supervised encoder, then a classifier head started from it ("@encoder")
TWO_STAGES = {
    "title": "two stages", "teaches": "t", "base": BASE,
    "runs": [
        {"name": "encoder", "set": {"method.name": "supcon", "train.epochs": 1}},
        {"name": "head", "set": {"method.name": "classifier", "train.epochs": 1,
                                 "model.init_from": "@encoder"}},
    ],
    "checks": [{"run": "head", "metric": "classifier_top1", "op": ">=", "value": 0}],
}


def test_a_second_stage_starts_from_the_lesson_s_earlier_run(tmp_path) -> None:
    path = write(tmp_path, TWO_STAGES)
    lesson = load_lesson(path)
    assert lesson.config("head").model.init_from == ""  # before the first stage has run
    runs, results = run_lesson(lesson, RunStore(tmp_path / "runs"))
    head = runs["head"].config()
    assert head.model.init_from == str(runs["encoder"].path)
    assert runs["head"].summary()["initialised_from"]["init_from"]["run"] == runs["encoder"].id
    assert all(r.passed for r in results), [r.line() for r in results]


def test_a_reference_must_name_an_earlier_run(tmp_path) -> None:
    path = write(tmp_path, {
        "title": "bad", "teaches": "t", "base": BASE,
        "runs": [{"name": "head", "set": {"method.name": "classifier",
                                          "model.init_from": "@encoder"}},
                 {"name": "encoder", "set": {"method.name": "supcon"}}],
    })
    with pytest.raises(ValueError, match="@encoder names no earlier run"):
        load_lesson(path)


def test_checks_may_compare_differences_between_runs(tmp_path) -> None:
    path = write(tmp_path, {
        "title": "drops", "teaches": "t", "base": BASE,
        "runs": [{"name": n, "set": {"method.name": "cross_entropy"}}
                 for n in ("a clean", "a noisy", "b clean", "b noisy")],
        "checks": [{"run": "a clean", "minus": "a noisy", "metric": "knn_top1", "op": "<",
                    "than": {"run": "b clean", "minus": "b noisy"}, "margin": 0.01}],
    })
    lesson = load_lesson(path)
    metrics = {"a clean": {"knn_top1": 0.9}, "a noisy": {"knn_top1": 0.85},
               "b clean": {"knn_top1": 0.9}, "b noisy": {"knn_top1": 0.7}}
    (result,) = evaluate_checks(lesson, metrics)
    assert result.passed and result.left == pytest.approx(0.05)
    assert result.right == pytest.approx(0.21)
    metrics["a noisy"]["knn_top1"] = 0.6
    assert not evaluate_checks(lesson, metrics)[0].passed


def test_missing_pretrained_weights_skip_the_lesson_with_the_reason(tmp_path, monkeypatch,
                                                                    capsys) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    path = write(tmp_path, {
        "title": "pretrained", "teaches": "t", "base": {**BASE, "model.backbone": "resnet18"},
        "runs": [{"name": "pretrained", "set": {"method.name": "byol",
                                                "model.pretrained": "imagenet"}},
                 {"name": "scratch", "set": {"method.name": "byol"}}],
    })
    lesson = load_lesson(path)  # loads: the weights are checked when it runs
    assert "resnet18-f37072fd.pth" in lesson.skip_reason()
    assert run_lesson_cli(str(path), str(tmp_path / "runs")) == 0
    out = capsys.readouterr().out
    assert "SKIPPED: run 'pretrained'" in out and str(tmp_path / "hub" / "checkpoints") in out
    assert not list((tmp_path / "runs").glob("*/config.json"))


def test_the_lessons_page_says_why_a_lesson_was_skipped(runs_dir, tmp_path, monkeypatch,
                                                       no_umap_warm_up) -> None:
    """The BYOL-from-ImageNet lesson, on a machine without the weights: the page runs nothing
    and shows which file to put where."""
    st_testing = pytest.importorskip("streamlit.testing.v1")
    import time

    from engine import lessons
    from tests.fixtures.app import APP, TIMEOUT, no_exception

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "byol_pretrained.yaml").write_text(
        (lessons.LESSONS_DIR / "byol_pretrained.yaml").read_text())
    monkeypatch.setattr(lessons, "LESSONS_DIR", folder)
    at = st_testing.AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["who"] = "tester"
    at.run()
    at.switch_page("app/pages/lessons.py").run()
    at.selectbox(key="lesson_name").set_value("byol_pretrained").run()
    at.button(key="lesson_run").click().run()
    no_exception(at)
    from app.lesson_runs import runner_of

    runner = runner_of("byol_pretrained")
    deadline = time.time() + 30
    while runner.alive and time.time() < deadline:
        time.sleep(0.2)
    at.run()
    no_exception(at)
    shown = " ".join(i.value for i in at.info)
    assert "Skipped on this machine" in shown and "resnet18-f37072fd.pth" in shown
    assert not runner.run_ids and not list(runs_dir.glob("*/config.json"))


def test_the_lessons_page_runner_chains_the_second_stage(tmp_path) -> None:
    """The runner behind the Lessons page (runs through the registry, as the app starts them)
    starts the head from the encoder run it just trained."""
    from engine.lessons import LessonRunner
    from engine.train.registry import RunRegistry

    path = write(tmp_path, TWO_STAGES)
    registry = RunRegistry(RunStore(tmp_path / "runs"))
    runner = LessonRunner(load_lesson(path), registry).start()
    runner.join(240)
    assert not runner.alive and runner.error is None, runner.error
    head = registry.run(runner.run_ids["head"])
    assert head.config().model.init_from == str(registry.run(runner.run_ids["encoder"]).path)
    assert all(r.passed for r in runner.results())
