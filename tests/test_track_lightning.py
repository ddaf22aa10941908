"""The worked example (examples/lightly_byol.py): lightly's BYOL trained with Lightning and
watched through engine.track.lightning.SSLStudioCallback; its run appears in the app. Needs
examples/requirements.txt (lightning, lightly), which the app does not: skipped without them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.fixtures.app import no_exception, open_app, texts

pytest.importorskip("lightning", reason="examples/requirements.txt is not installed (lightning)")
pytest.importorskip("lightly", reason="examples/requirements.txt is not installed (lightly)")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_lightly_byol_with_the_callback_appears_in_the_app(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import lightly_byol
    finally:
        sys.path.remove(str(ROOT / "examples"))
    run_id = lightly_byol.main(["--runs-dir", str(tmp_path), "--epochs", "2",
                                "--train-size", "640", "--name", "byol example"])
    from engine.train.store import RunStore

    run = RunStore(tmp_path).get(run_id)
    assert run.status() == "finished" and run.config().method.name == "byol"
    steps = run.metrics("step")
    assert steps[-1]["step"] == 10 and all("momentum" in s for s in steps)
    assert [d["views"] for d in run.metrics("diagnostics")].count(2) == 2  # steps 5 and 10
    assert run.snapshots() == [0, 10] and run.summary()["knn_top1"] > 0
    assert run.load_snapshot()["images"].shape == (512, 3, 32, 32)

    at = open_app(monkeypatch, tmp_path, {"run": run_id}).run()
    no_exception(at)
    assert "Collapse diagnostics" in texts(at)
    at.switch_page("app/pages/explore.py").run()
    at.radio(key="explore_kind").set_value("pca").run()
    at.button(key="explore_random").click().run()
    no_exception(at)
    assert "nearest neighbours" in texts(at) and len(at.get("image")) >= 11
