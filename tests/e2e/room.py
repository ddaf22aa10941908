"""A room for the pages' browser tests: a server with an instructor token, two finished runs
(Ada's and Bob's) on disk before it starts, and what the tests read from its runs folder and
its pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.config import RunConfig
from engine.train.store import RunStore
from tests.e2e import ui
from tests.e2e.app_server import AppServer, serving

TOKEN = "e2e-instructor"
START_S = 90  # a shared 2-core machine may take long to load data and evaluate at step 0
STOP_S = 60
EARLIER = {"ada": "ada-earlier", "bob": "bob-earlier"}  # the runs on disk before the server


def write_earlier_runs(root: Path) -> None:
    """A finished run of Ada's and one of Bob's, as an earlier session left them."""
    store = RunStore(root)
    for who, name in EARLIER.items():
        store.create(RunConfig().with_overrides({"name": name}), owner=who, status="finished")


@contextmanager
def serve(tmp_path_factory, env: dict[str, str] | None = None) -> Iterator[AppServer]:  # noqa: ANN001
    """The room's server on a runs folder of its own, with ``env`` added."""
    runs = tmp_path_factory.mktemp("runs")
    write_earlier_runs(runs)
    with serving(tmp_path_factory, runs, {"SSL_STUDIO_INSTRUCTOR_TOKEN": TOKEN, **(env or {})}
                 ) as server:
        yield server


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
