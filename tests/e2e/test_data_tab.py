"""The Train page's Data tab in a real browser, for a data set that is not on disk yet: it asks
before loading, "Load this data set (may download)" loads it (here from MNIST's own raw files,
written by the test in torchvision's layout, so nothing is downloaded), and once loaded the tab
describes it without asking again."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.app_server import AppServer, serving
from tests.e2e.room import main, sidebar
from tests.fixtures import data_files as fx

pytestmark = pytest.mark.e2e

N_TRAIN, N_TEST = 20, 8


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[AppServer]:
    data = tmp_path_factory.mktemp("data")
    fx.write_mnist_raw(data / "mnist", n_train=N_TRAIN, n_test=N_TEST)
    with serving(tmp_path_factory, env={"SSL_STUDIO_DATA": str(data)}) as server:
        yield server


def open_data_tab(page) -> None:  # noqa: ANN001
    """Pick MNIST in the sidebar (unless it is picked) and open the Data tab."""
    picker = sidebar(page).get_by_role("combobox", name="Data set", exact=True)
    picker.wait_for(timeout=30_000)
    if "mnist" not in picker.inner_text():
        picker.click()
        page.get_by_role("option", name="mnist", exact=True).click()
    main(page).get_by_role("tab", name=re.compile("Data")).click()


def test_load_this_data_set_loads_it_once(app, visit):
    page = visit(app.url, "ada")
    open_data_tab(page)
    asks = main(page).get_by_text("mnist is not on disk yet")
    asks.wait_for(state="visible", timeout=30_000)
    described = main(page).get_by_text(
        f"{N_TRAIN} train and {N_TEST} test images, 1 channel(s)")
    assert described.count() == 0  # nothing is loaded before the press

    main(page).get_by_role("button", name="Load this data set (may download)").click()
    described.wait_for(state="visible", timeout=60_000)
    main(page).get_by_text(f"{N_TRAIN} train images, a class at a time in turn").wait_for(
        state="visible", timeout=30_000)
    assert main(page).get_by_text("Cannot load").count() == 0

    page.reload()  # loaded once, the tab now describes it at once: no second question
    open_data_tab(page)
    described.wait_for(state="visible", timeout=30_000)
    assert main(page).get_by_role("button", name="Load this data set (may download)").count() == 0
