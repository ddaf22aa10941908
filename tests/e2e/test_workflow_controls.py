"""The Train page's workflow controls in a real browser: micro-batches per step (and the warning
for a method that only approximates accumulation), label noise and class-balanced batches reach
the run that the Train button starts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.e2e import ui
from tests.e2e.app_server import AppServer, serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[AppServer]:
    with serving(tmp_path_factory) as server:
        yield server


def sidebar(page):  # noqa: ANN001, ANN201
    return page.get_by_test_id("stSidebar")


def open_expander(page, title: str) -> None:  # noqa: ANN001
    sidebar(page).get_by_test_id("stExpander").filter(has_text=title).locator(
        "summary").first.click()


def set_number(page, label: str, value: str) -> None:  # noqa: ANN001
    box = sidebar(page).get_by_role("spinbutton", name=label, exact=True)
    box.fill(value)
    box.press("Enter")


def test_accumulation_noise_and_balanced_batches_from_the_train_page(app, visit):
    page = visit(app.url, "e2e")
    warning = sidebar(page).get_by_text(re.compile("Accumulation is approximate for simclr"))
    open_expander(page, "Optimisation")
    set_number(page, "Micro-batches per step (accumulation)", "2")
    warning.wait_for(state="visible", timeout=30_000)
    open_expander(page, "Data options")
    set_number(page, "Train images (0 = all)", "512")
    set_number(page, "Label noise (fraction flipped)", "0.2")
    sidebar(page).get_by_text("every class in every batch").click()
    ui.set_seconds(page, 10)
    run_id = ui.start_run(page, set())
    config = json.loads((app.runs_dir / run_id / "config.json").read_text())
    assert config["train"]["accumulate"] == 2
    assert config["data"]["label_noise"] == 0.2
    assert config["data"]["sampler"] == "balanced"
    assert config["method"]["name"] == "simclr"
    ui.wait_until(lambda: ui.status_on_screen(page) in ui.ENDED, 120, "the run to end")
