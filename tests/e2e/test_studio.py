"""The augmentation studio in a real browser: open Explore on a trained run, compute its
invariance profile and see the chart; pick an image and see its view cloud on the map."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.augment import resolve_views
from engine.augment.export import preset_json, read_preset_json
from engine.config import RunConfig
from engine.train.runner import run_foreground
from engine.train.store import RunStore
from engine.train.sweep import Sweep, sweep_ops
from tests.e2e import ui
from tests.e2e.app_server import AppServer
from tests.fixtures.tiny_runs import TINY

pytestmark = pytest.mark.e2e

SETTINGS = {**TINY, "data.name": "shapes", "train.device": "cpu", "train.epochs": 1,
            "train.max_seconds": 0, "eval.diagnostics_every_steps": 0}
PROFILE_S = 120
SWEEP_S = 240  # three runs of 5 s one after another, with their evaluations


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, str, Path]]:
    root = tmp_path_factory.mktemp("runs")
    run, last = run_foreground(RunConfig().with_overrides(SETTINGS), RunStore(root))
    assert last["type"] == "finished", last.get("error")
    _, last = run_foreground(RunConfig().with_overrides(
        {**SETTINGS, "method.name": "supcon", "name": "overlay"}), RunStore(root))
    assert last["type"] == "finished", last.get("error")
    app = AppServer(root, tmp_path_factory.mktemp("server") / "streamlit.log",
                    env={"SSL_STUDIO_PROFILE_QUERIES": "64"})
    app.start()
    try:
        yield app.url, run.id, root
    finally:
        app.stop()


def _chart_with(page, what: str):  # noqa: ANN001, ANN202
    """The first plotly chart whose traces' JSON contains ``what``, once drawn."""
    def find():  # noqa: ANN202
        for graph in page.locator(".js-plotly-plot").all():
            data = graph.evaluate("g => JSON.stringify((g._fullData || []).map("
                                  "t => [t.type, t.name]))")
            if what in data:
                return graph
        return None

    return ui.wait_until(find, PROFILE_S, f"a chart with {what}")


def test_profile_chart_and_view_cloud(server, visit) -> None:  # noqa: ANN001
    url, run_id, _ = server
    page = visit(url, "e2e")
    page.goto(f"{url}/explore?who=e2e&run={run_id}")
    page.get_by_role("heading", name="Augmentation studio").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Invariance profile").click()
    page.get_by_role("button", name=re.compile("Compute the invariance profile")).click()
    bars = _chart_with(page, '"bar"')
    names = bars.evaluate("g => g._fullData[0].x.join(',')")
    assert "color_jitter" in names and "perspective" in names

    page.get_by_role("tab", name="View cloud").click()
    page.get_by_role("button", name=re.compile("Draw the view cloud")).click()
    cloud = _chart_with(page, "source image")
    views = cloud.evaluate("g => g._fullData.find(t => t.name === 'views').x.length")
    assert views == 24
    assert float(ui.metric(page, "Mean cosine, view to source")) <= 1.0


def test_a_preset_json_comes_back_in_and_draws_its_views(server, visit, tmp_path) -> None:  # noqa: ANN001
    url, run_id, _ = server
    preset = tmp_path / "mine.json"
    preset.write_text(preset_json([[{"op": "perspective", "p": 1.0, "distortion": 0.5}]],
                                  "perspective only"))
    page = visit(url, "e2e")
    page.goto(f"{url}/explore?who=e2e&run={run_id}")
    page.get_by_role("tab", name="Export").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(preset))
    page.get_by_text("perspective only with 1 view(s), every op checked").wait_for()
    page.get_by_role("tab", name="View cloud").click()
    ui.wait_until(lambda: _choose(page, "Views from", "the imported preset"), 60,
                  "the imported preset")
    page.get_by_role("button", name=re.compile("Draw the view cloud")).click()
    _chart_with(page, "source image")


def _choose(page, box: str, option: str) -> bool:  # noqa: ANN001
    page.get_by_role("combobox", name=box).click()
    page.get_by_role("option").filter(has_text=option).first.click(timeout=5_000)
    return True


def _bar_traces(page) -> int:  # noqa: ANN001
    return _chart_with(page, '"bar"').evaluate(
        "g => g._fullData.filter(t => t.type === 'bar').length")


def _profile_title(page) -> str:  # noqa: ANN001
    return _chart_with(page, '"bar"').evaluate("g => g._fullLayout.title.text")


def test_profile_overlay_measure_and_strength(server, visit) -> None:  # noqa: ANN001
    url, run_id, _ = server
    page = visit(url, "e2e")
    page.goto(f"{url}/explore?who=e2e&run={run_id}")
    page.get_by_role("tab", name="Invariance profile").click()
    compute = page.get_by_role("button", name=re.compile("Compute the invariance profile"))
    ui.wait_until(lambda: _choose(page, "Overlay another run", "overlay"), 60, "the overlay")
    ui.wait_until(lambda: compute.count() > 0 or _bar_traces(page) == 2, PROFILE_S,
                  "a profile to compute for the overlaid run")
    while compute.count():  # this run's (unless computed before) and the overlaid run's
        compute.first.click()
        page.wait_for_timeout(1000)
    ui.wait_until(lambda: _bar_traces(page) == 2, PROFILE_S, "both runs' bars")
    assert "mean cosine" in _profile_title(page) and "run strength" in _profile_title(page)
    page.get_by_role("radiogroup", name="Measure").get_by_text("kNN", exact=True).click()
    ui.wait_until(lambda: "kNN top-1" in _profile_title(page), 30, "the kNN profile")
    page.get_by_role("radiogroup", name="Strength").get_by_text("stronger", exact=True).click()
    ui.wait_until(lambda: "stronger strength" in _profile_title(page), 30,
                  "the profile at 1.5 times each op's strength")
    assert _bar_traces(page) == 2


def _number_input(page, label: str):  # noqa: ANN001, ANN202
    return page.get_by_test_id("stNumberInput").filter(has_text=label).locator("input")


def test_use_the_image_picked_on_the_map_for_the_view_cloud(server, visit) -> None:  # noqa: ANN001
    url, run_id, _ = server
    page = visit(url, "e2e")
    page.goto(f"{url}/explore?who=e2e&run={run_id}")
    page.get_by_role("tab", name="View cloud").click()
    row_box = _number_input(page, "Image (map row)")
    ui.wait_until(lambda: row_box.input_value() == "0", 60, "the view cloud's image at row 0")
    use = page.get_by_role("button", name=re.compile("Use the image picked on the map"))

    def picked_another() -> bool:
        page.get_by_role("button", name=re.compile("Random image")).click()
        page.get_by_text("Query ·", exact=False).first.wait_for(timeout=30_000)
        use.wait_for(timeout=5_000)  # not offered when the random pick is row 0 itself
        return True

    ui.wait_until(picked_another, 60, "a picked image other than row 0", interval=1.0)
    offer = use.inner_text()
    row, image = re.search(r"row (\d+), #(\d+)", offer).groups()
    use.click()
    ui.wait_until(lambda: row_box.input_value() == row, 30, f"the view cloud's image at {row}")
    ui.wait_until(lambda: use.count() == 0, 30, "the offer gone once taken")
    views = page.get_by_test_id("stMainBlockContainer").get_by_test_id("stSlider").filter(
        has_text="Views").get_by_role("slider")
    views.focus()
    views.press("Home")  # 4 views, the fewest
    ui.wait_until(lambda: views.input_value() == "4", 10, "4 views")
    page.wait_for_timeout(500)  # the slider sends its value when the keys stop
    page.get_by_role("button", name=re.compile("Draw the view cloud")).click()
    cloud = _chart_with(page, "source image")
    ui.wait_until(lambda: cloud.evaluate(
        "g => g._fullData.find(t => t.name === 'views').x.length") == 4, 30, "a cloud of 4 views")
    assert page.get_by_text(f"View cloud of image #{image} ", exact=False).count() > 0


def test_export_downloads_and_shows_each_form(server, visit) -> None:  # noqa: ANN001
    url, run_id, _ = server
    page = visit(url, "e2e")
    page.goto(f"{url}/explore?who=e2e&run={run_id}")
    page.get_by_role("tab", name="Export").click()
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name=re.compile("Download preset JSON")).click()
    preset = read_preset_json(Path(info.value.path()).read_bytes())
    assert preset["views"] == resolve_views(RunConfig().with_overrides(SETTINGS).augment)
    code = page.get_by_test_id("stCode")
    for shown, marker in (("torchvision", "from torchvision.transforms import v2"),
                          ("kornia", "import kornia.augmentation"),
                          ("preset JSON", '"views"')):
        page.get_by_role("radiogroup", name="Show").get_by_text(shown, exact=True).click()
        ui.wait_until(lambda marker=marker: marker in code.first.inner_text(), 30,
                      f"the {shown} code")


def test_an_ablation_sweep_queues_its_runs_and_fills_its_table(server, visit) -> None:  # noqa: ANN001
    url, run_id, root = server
    base = RunConfig().with_overrides(SETTINGS)
    page = visit(url, "e2e")
    page.goto(f"{url}/explore?who=e2e&run={run_id}")
    page.get_by_role("tab", name="Ablation sweep").click()
    ops = page.get_by_test_id("stMultiSelect").filter(has_text="Ops to vary")
    ops.wait_for(timeout=60_000)
    kept = sweep_ops(base)[:2]
    ops.locator("input").click()
    for _ in range(len(sweep_ops(base)) - 2):  # Backspace takes the last op off the list
        ops.locator("input").press("Backspace")
    page.keyboard.press("Escape")
    seconds = _number_input(page, "Seconds a run")
    seconds.fill("5")
    seconds.press("Enter")
    ui.wait_until(lambda: page.get_by_text("3 runs of 5 s each", exact=False).count() > 0, 30,
                  "a plan of 3 runs (the base and each of two ops left out)")
    page.get_by_role("button", name=re.compile("Queue the sweep")).click()
    ui.wait_until(lambda: Sweep.list(root), 30, "the sweep on disk")
    sweep = Sweep.load(root, Sweep.list(root)[0])
    assert sweep.mode == "leave_one_out" and len(sweep.cells) == 3
    assert sweep.budget_seconds == 5
    assert sorted(c.dropped for c in sweep.cells if c.dropped) == sorted([[op] for op in kept])
    ui.wait_until(lambda: page.get_by_text("3 of 3 runs finished", exact=False).count() > 0,
                  SWEEP_S, "the sweep's three runs to finish")
    rows = Sweep.load(root, sweep.id).table(RunStore(root))
    assert all(r["status"] == "finished" and r["knn"] is not None for r in rows), rows
    assert ui.picker_text(page, "Sweep") == sweep.id
