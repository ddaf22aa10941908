"""A map of 10,000 points in a real browser: Explore draws the UMAP of a run whose snapshots
hold 10,000 images (points drawn smaller and fainter than on a small map), the thumbnail of a
hovered point shows, a click shows the query and its nearest neighbours, and the run's other
snapshot gets its UMAP too (warm-started from the first map)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from engine import track
from tests.e2e import ui
from tests.e2e.app_server import AppServer

pytestmark = pytest.mark.e2e

N = 10_000
MAP_S = 240  # a 10,000-point UMAP beside the other tests on a shared 2-core machine
CLASSES = ["red", "green", "blue", "yellow", "cyan", "magenta", "grey", "orange", "navy", "lime"]


def _tracked_run(root) -> str:  # noqa: ANN001
    """Two snapshots of 10,000 points in 10 clusters, with 16 px thumbnails (one colour per
    class), written through the tracking API as a user's own loop would."""
    rng = np.random.default_rng(0)
    labels = np.arange(N) % 10
    centres = rng.normal(size=(10, 32)) * 2
    colours = rng.integers(0, 256, size=(10, 3, 1, 1))
    images = np.broadcast_to(colours[labels], (N, 3, 16, 16)).astype(np.uint8)
    with track.start("ten thousand points", runs_dir=root, class_names=CLASSES) as run:
        for step, spread in ((0, 1.5), (100, 1.0)):
            h = centres[labels] + spread * rng.normal(size=(N, 32))
            run.embeddings(step, h=h.astype(np.float32), labels=labels, images=images)
        run.log(100, loss=1.0)
        run.flush()
        return run.id


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("runs")
    run_id = _tracked_run(root)
    app = AppServer(root, tmp_path_factory.mktemp("server") / "streamlit.log",
                    env={"SSL_STUDIO_UMAP_WARMUP": "1"})
    app.start()
    try:
        yield app.url, run_id
    finally:
        app.stop()


def _umap_caption(page, step: int):  # noqa: ANN001, ANN202
    return page.get_by_text(f"UMAP of {N} test images, feature h, at step {step}", exact=False)


def test_ten_thousand_points_map_hover_click_neighbours(server, visit) -> None:  # noqa: ANN001
    url, run_id = server
    page = visit(url, "e2e")
    page.goto(f"{url}/explore?who=e2e&run={run_id}")
    ui.wait_until(lambda: _umap_caption(page, 100).count() > 0, MAP_S, "the UMAP of step 100")
    graph = page.locator(".js-plotly-plot").first
    ui.wait_until(lambda: graph.evaluate("g => !!(g._fullData && g._fullData[0])"), 20,
                  "the map drawn")
    points, size = graph.evaluate("g => [g._fullData[0].x.length, g._fullData[0].marker.size]")
    assert points == N and size < 7  # smaller points than a 1,000-point map's

    # rest on a point: its thumbnail (from a JPEG sheet of all 10,000); click it: neighbours
    graph.scroll_into_view_if_needed()
    xy = ui.centre_point(graph)
    page.mouse.move(xy[0] - 30, xy[1] - 30)
    page.wait_for_timeout(300)
    page.mouse.move(*xy)
    tip = page.locator("#ssl-hover-thumb")
    ui.wait_until(lambda: tip.is_visible(), 20, "the hover thumbnail")
    assert "data:image/jpeg" in tip.evaluate("e => e.style.backgroundImage")
    page.mouse.click(*xy)
    ui.wait_until(lambda: page.get_by_text("Query ·", exact=False).count() > 0, 30,
                  "the clicked image as the query")
    images = page.locator('[data-testid="stImage"] img')
    ui.wait_until(lambda: images.count() >= 11, 30, "the query and its 10 neighbour images")
    precision = page.get_by_text("precision@10 for", exact=False).first.inner_text()
    assert precision.rstrip().endswith("1.00")  # ten clean clusters: every neighbour agrees
    ui.shot(page, "big-map-neighbours")

    # the other snapshot: its UMAP starts from this one
    slider = page.get_by_test_id("stMainBlockContainer").get_by_role("slider").first
    slider.focus()
    slider.press("Home")
    ui.wait_until(lambda: _umap_caption(page, 0).count() > 0, MAP_S, "the UMAP of step 0")
