"""Where a run starts from, set in a real browser on the Train page ("Starting weights"): the
second stage (method classifier) on another run's encoder, whose backbone and width it takes
(the parent here is narrower than the page's default), and a pretrained weights file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from engine.config import RunConfig
from engine.models import build_backbone
from engine.train.runner import run_foreground
from engine.train.store import RunStore
from tests.e2e import ui
from tests.e2e.app_server import AppServer, serving
from tests.e2e.test_workflow_controls import open_expander, sidebar
from tests.fixtures.tiny_runs import TINY

pytestmark = pytest.mark.e2e

PARENT = {**TINY, "data.name": "shapes", "train.device": "cpu", "train.epochs": 1,
          "train.max_seconds": 0, "eval.diagnostics_every_steps": 0}
END_S = 120


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[tuple[AppServer, str, Path]]:
    root = tmp_path_factory.mktemp("runs")
    parent, last = run_foreground(RunConfig().with_overrides(PARENT), RunStore(root),
                                  owner="ada")
    assert last["type"] == "finished", last.get("error")
    weights = tmp_path_factory.mktemp("weights") / "small_cnn.pth"
    # the Train page's backbone (small_cnn at its default width), saved as a user's own file
    torch.save(build_backbone("small_cnn", 3, 32).state_dict(), weights)
    with serving(tmp_path_factory, root) as server:
        yield server, parent.id, weights


def _choose_method(page, name: str) -> None:  # noqa: ANN001
    box = sidebar(page).get_by_role("combobox", name="Method", exact=True)
    box.click()
    page.keyboard.type(name)  # the list is long: typing filters it to the one method
    page.get_by_role("option", name=name, exact=True).click()
    ui.wait_until(lambda: sidebar(page).get_by_role("combobox", name="Method", exact=True)
                  .input_value() == name, 20, f"method {name}")


def _type(page, label: str, text: str) -> None:  # noqa: ANN001
    box = sidebar(page).get_by_role("textbox", name=label, exact=True)
    box.fill(text)
    box.press("Enter")
    page.wait_for_timeout(500)


def _ended(server: AppServer, run_id: str) -> dict:
    summary = server.runs_dir / run_id / "summary.json"
    ui.wait_until(lambda: json.loads(summary.read_text()).get("status") in ui.ENDED, END_S,
                  f"run {run_id} to end")
    return json.loads(summary.read_text())


def test_second_stage_from_a_run_then_a_pretrained_file(app, visit) -> None:  # noqa: ANN001
    server, parent_id, weights = app
    page = visit(server.url, "ada")
    ui.set_seconds(page, 10)
    _choose_method(page, "classifier")
    open_expander(page, "Starting weights")
    _type(page, "Start from run (its encoder)", "no-such-run")
    sidebar(page).get_by_text("model.init_from: no run 'no-such-run'").wait_for(timeout=20_000)
    _type(page, "Start from run (its encoder)", parent_id)
    sidebar(page).get_by_text("Its encoder is a small_cnn of width 8").wait_for(timeout=20_000)
    known = {parent_id}
    stage = ui.start_run(page, known)
    known.add(stage)
    config = json.loads((server.runs_dir / stage / "config.json").read_text())
    assert config["method"]["name"] == "classifier"
    assert Path(config["model"]["init_from"]) == server.runs_dir / parent_id  # its directory
    summary = _ended(server, stage)
    assert summary["status"] == "finished", summary.get("error")
    assert summary["initialised_from"]["init_from"]["run"] == parent_id

    _type(page, "Start from run (its encoder)", "")
    _choose_method(page, "simclr")
    _type(page, "Pretrained weights", str(weights))
    started = ui.start_run(page, known)
    config = json.loads((server.runs_dir / started / "config.json").read_text())
    assert config["model"]["pretrained"] == str(weights) and not config["model"]["init_from"]
    summary = _ended(server, started)
    assert summary["status"] == "finished", summary.get("error")
    loaded = summary["initialised_from"]["pretrained"]
    assert loaded["file"] == str(weights) and loaded["loaded"] > 0 and not loaded["skipped"]
