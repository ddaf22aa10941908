"""Explore's controls in a real browser, over a run written through the tracking API and still
live: the map kind, the feature, the colouring, the neighbours slider, Random image, the
snapshot slider, a lasso selection with its two downloads, and "Show the newest map" when the
run logs a new snapshot while the page is open."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine import track
from tests.e2e import ui
from tests.e2e.app_server import AppServer

pytestmark = pytest.mark.e2e

N = 300
CLASSES = ["circle", "square", "star"]
SIZES = ["small", "large"]
MAP_S = 120


def _snapshot(run: track.Run, step: int, rng: np.random.Generator) -> None:
    """Three well separated clusters of 100 images (h and z), one colour per class; ``size``
    alternates along the rows."""
    labels = np.arange(N) % 3
    centres = np.eye(3, 16) * 8
    h = centres[labels] + rng.normal(size=(N, 16))
    colours = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], np.uint8)
    images = np.broadcast_to(colours[labels][:, :, None, None], (N, 3, 8, 8)).copy()
    run.embeddings(step, h=h.astype(np.float32), z=(h[:, :8] * 2).astype(np.float32),
                   labels=labels, attributes={"size": np.arange(N) % 2}, images=images)
    run.log(step, loss=1.0 / (1 + step))
    assert run.flush(30)


@pytest.fixture(scope="module")
def live_run(tmp_path_factory) -> Iterator[tuple[str, track.Run, Path]]:
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    run = track.start("three clusters", runs_dir=root, class_names=CLASSES,
                      attribute_names={"size": SIZES})
    for step in (0, 100):
        _snapshot(run, step, rng)
    app = AppServer(root, tmp_path_factory.mktemp("server") / "streamlit.log",
                    env={"SSL_STUDIO_UMAP_WARMUP": "1"})
    app.start()
    try:
        yield app.url, run, root
    finally:
        app.stop()
        run.finish()


def _caption(page, kind: str, feature: str, step: int):  # noqa: ANN001, ANN202
    return page.get_by_text(f"{kind} of {N} test images, feature {feature}, at step {step}",
                            exact=False)


def _wait_caption(page, kind: str, feature: str, step: int) -> None:  # noqa: ANN001
    ui.wait_until(lambda: _caption(page, kind, feature, step).count() > 0, MAP_S,
                  f"the {kind} map of {feature} at step {step}")


def _radio(page, label: str, option: str) -> None:  # noqa: ANN001
    group = page.get_by_test_id("stMainBlockContainer").get_by_role("radiogroup", name=label)
    group.get_by_text(option, exact=True).click()


def _query(page) -> str:  # noqa: ANN001
    return page.get_by_text("Query ·", exact=False).first.inner_text()


def _legend(page) -> str:  # noqa: ANN001
    return page.get_by_test_id("stMarkdownContainer").filter(
        has_text=re.compile(r"(circle|small) \(\d+\)")).first.inner_text()


def _download(page, name: str) -> bytes:  # noqa: ANN001
    with page.expect_download(timeout=90_000) as info:  # the data are made on the click
        page.get_by_role("button", name=re.compile(name)).click()
    return Path(info.value.path()).read_bytes()


def _points_of(graph, code_of_point: int) -> list[tuple[float, float]]:  # noqa: ANN001
    """Page positions of the map's points whose row is congruent to ``code_of_point`` mod 3."""
    return graph.evaluate(
        """(g, c) => { const d = g._fullData[0], xa = g._fullLayout.xaxis,
                  ya = g._fullLayout.yaxis, box = g.getBoundingClientRect(), out = [];
          for (let i = 0; i < d.x.length; i++) {
            const row = Array.isArray(d.customdata[i]) ? d.customdata[i][0] : d.customdata[i];
            if (row % 3 === c) out.push([box.left + xa._offset + xa.d2p(d.x[i]),
                                         box.top + ya._offset + ya.d2p(d.y[i])]); }
          return out; }""", code_of_point)


def test_map_kind_feature_colouring_neighbours_and_snapshot(live_run, visit) -> None:  # noqa: ANN001
    url, _, _ = live_run
    page = visit(url, "e2e")
    run_id = live_run[1].id
    page.goto(f"{url}/explore?who=e2e&run={run_id}")
    _wait_caption(page, "UMAP", "h", 100)

    _radio(page, "Map", "PCA")
    _wait_caption(page, "PCA", "h", 100)
    _radio(page, "Feature", "z")
    _wait_caption(page, "PCA", "z", 100)

    assert "circle (100)" in _legend(page)
    ui.picker(page, "Colour by").click()
    page.get_by_role("option", name="size").click()
    ui.wait_until(lambda: "small (150)" in _legend(page), 30, "the legend of the size attribute")

    slider = page.get_by_test_id("stMainBlockContainer").get_by_test_id("stSlider").filter(
        has_text="Neighbours k").get_by_role("slider")
    slider.focus()
    slider.press("Home")
    for _ in range(4):
        slider.press("ArrowRight")
    ui.wait_until(lambda: slider.input_value() == "5", 10, "k at 5")
    page.get_by_role("button", name=re.compile("Random image")).click()
    ui.wait_until(lambda: page.get_by_text("5 nearest neighbours", exact=False).count() > 0,
                  30, "five neighbours of a random image")
    first = _query(page)
    changed = False
    for _ in range(3):  # a second draw picks another of the 300 images (almost surely)
        page.get_by_role("button", name=re.compile("Random image")).click()
        try:
            ui.wait_until(lambda: _query(page) != first, 10, "another random image")
            changed = True
            break
        except AssertionError:
            continue
    assert changed, "Random image kept the same query"

    step_slider = page.get_by_test_id("stMainBlockContainer").get_by_test_id(
        "stSlider").filter(has_text="Snapshot").get_by_role("slider")
    step_slider.focus()
    step_slider.press("Home")
    _wait_caption(page, "PCA", "z", 0)


def test_lasso_selection_and_its_downloads(live_run, visit) -> None:  # noqa: ANN001
    url, run, _ = live_run
    page = visit(url, "e2e")
    page.goto(f"{url}/explore?who=e2e&run={run.id}")
    _wait_caption(page, "UMAP", "h", 100)
    _radio(page, "Map", "PCA")
    _wait_caption(page, "PCA", "h", 100)
    graph = page.locator(".js-plotly-plot").first
    ui.wait_until(lambda: graph.evaluate("g => !!(g._fullData && g._fullData[0])"), 20,
                  "the map drawn")

    # a lasso around the circles' cluster (rows 0, 3, 6, ...), drawn with the mouse
    graph.hover()
    page.locator('.modebar-btn[data-title="Lasso Select"]').click()
    points = np.array(_points_of(graph, 0))  # where they are now the page has scrolled
    (x0, y0), (x1, y1) = points.min(0) - 6, points.max(0) + 6
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    header = page.get_by_test_id("stMarkdownContainer").filter(has_text="images selected")
    ui.wait_until(lambda: header.count() > 0, 30, "the lasso's selection")
    text = header.first.inner_text()
    count = int(re.search(r"(\d+) images selected", text).group(1))
    assert count >= 90 and "circle" in text, text  # the cluster, maybe a stray neighbour

    table = list(csv.DictReader(io.StringIO(_download(page, "Selection as CSV").decode())))
    assert len(table) == count
    assert sum(row["class"] == "circle" for row in table) >= 90
    with zipfile.ZipFile(io.BytesIO(_download(page, "Images as zip"))) as zf:
        names = zf.namelist()
    assert len(names) == count and all(n.endswith(".png") for n in names)


def test_show_the_newest_map_when_the_live_run_logs_one(live_run, visit) -> None:  # noqa: ANN001
    url, run, _ = live_run
    page = visit(url, "e2e")
    page.goto(f"{url}/explore?who=e2e&run={run.id}")
    _wait_caption(page, "UMAP", "h", 100)
    _snapshot(run, 200, np.random.default_rng(1))
    newest = page.get_by_role("button", name="Show the newest map (step 200)")
    newest.wait_for(timeout=30_000)
    newest.click()
    _wait_caption(page, "UMAP", "h", 200)
