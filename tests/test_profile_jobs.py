"""Tests for engine.eval.profile_jobs: a profile is computed once in the background, cached
beside the run, and a failure is reported instead of raised."""

from __future__ import annotations

import pytest

from engine.config import RunConfig
from engine.eval.profile_jobs import ProfileJobs
from engine.train.runner import run_foreground
from engine.train.store import RunStore
from tests.fixtures.tiny_runs import TINIER

SETTINGS = {**TINIER, "data.name": "shapes", "model.backbone": "small_cnn",
            "train.device": "cpu", "train.epochs": 1, "train.max_seconds": 0,
            "eval.diagnostics_every_steps": 0}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    store = RunStore(tmp_path_factory.mktemp("runs"))
    run, last = run_foreground(RunConfig().with_overrides(SETTINGS), store)
    assert last["type"] == "finished", last.get("error")
    return run


def test_profile_is_computed_in_the_background_once_and_cached(run) -> None:  # noqa: ANN001
    jobs = ProfileJobs(n_bank=128, n_query=64, ops=["rotation", "grayscale"])
    assert jobs.request(run) is None
    assert jobs.status(run.id) in ("queued", "computing", "idle")
    assert jobs.wait(60)
    profile = jobs.request(run)
    assert profile is not None and profile["step"] == 8 and len(profile["rows"]) == 4
    assert jobs.status(run.id) == "idle" and jobs.progress(run.id) == 1.0
    assert list((run.path / "studio").glob("profile_step_*.json"))
    # a second instance (another server process) reads the cache without computing
    other = ProfileJobs(encoder=lambda r: pytest.fail("computed again"))
    assert other.request(run) == profile


def test_failure_is_reported(run, tmp_path) -> None:  # noqa: ANN001
    def broken(_run):  # noqa: ANN001, ANN202
        raise RuntimeError("the data set went away")

    import shutil

    copy = RunStore(tmp_path).root / run.id
    shutil.copytree(run.path, copy)
    shutil.rmtree(copy / "studio", ignore_errors=True)
    moved = RunStore(tmp_path).get(run.id)
    jobs = ProfileJobs(encoder=broken)
    assert jobs.request(moved) is None and jobs.wait(30)
    assert jobs.status(run.id) == "failed" and "went away" in jobs.error(run.id)


def test_run_without_checkpoint_says_so(tmp_path) -> None:  # noqa: ANN001
    fresh = RunStore(tmp_path).create(RunConfig().with_overrides(SETTINGS))
    with pytest.raises(ValueError, match="has no checkpoint yet"):
        ProfileJobs().request(fresh)
