"""The Runs and Compare pages in a real browser: pick a run in the runs table and open it in
Train or Explore, download it, delete it (or not), compare two, evaluate its checkpoint, share
it as an archive and import that archive back; on Compare, pick two runs and draw random
queries with both runs' neighbours."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.train.runner import run_foreground
from engine.train.store import RunStore
from tests.e2e import ui
from tests.e2e.app_server import AppServer, serving
from tests.fixtures.tiny_runs import TINY

pytestmark = pytest.mark.e2e

WHO = "e2e"
SETTINGS = {**TINY, "data.name": "shapes", "train.device": "cpu", "train.epochs": 1,
            "train.max_seconds": 0, "eval.diagnostics_every_steps": 0}
#: the module's runs, oldest first: their names (shown in the table and the pickers), methods
RUNS = {"alpha": "simclr", "beta": "supcon", "doomed": "simclr", "shared": "simclr"}
PAGE_S = 60  # a page switch or a rerun on a shared 2-core machine

#: the row (aria-rowindex: 1 is the header) of the runs table whose cell reads ``name``
_ROW_OF_JS = """(grid, name) => {
    for (const tr of grid.querySelectorAll('tr[role=row]')) {
        if ([...tr.querySelectorAll('td')].some(td => td.textContent.trim() === name))
            return Number(tr.getAttribute('aria-rowindex'));
    }
    return null;
}"""


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[tuple[AppServer, dict[str, str]]]:
    """The app on a runs folder holding the finished tiny runs of :data:`RUNS` (each with maps
    and a checkpoint), owned by the participant the tests visit as; yields the server and the
    run ids by name."""
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    ids = {}
    for name, method in RUNS.items():
        cfg = RunConfig().with_overrides({**SETTINGS, "method.name": method, "name": name})
        run, last = run_foreground(cfg, store, owner=WHO)
        assert last["type"] == "finished", last.get("error")
        ids[name] = run.id
    with serving(tmp_path_factory, root) as server:
        yield server, ids


# -- the Runs page ---------------------------------------------------------------------------
def runs_page(visit, server: AppServer):  # noqa: ANN001, ANN201
    """A new participant's browser on the Runs page, its table drawn."""
    page = visit(server.url, WHO)
    page.goto(f"{server.url}/runs?who={WHO}")
    grid(page).wait_for(timeout=PAGE_S * 1000)
    return page


def grid(page):  # noqa: ANN001, ANN201
    return page.get_by_test_id("stMainBlockContainer").get_by_test_id("stDataFrame")


def row_of(page, name: str) -> int | None:  # noqa: ANN001
    """The table row (2 for the first run) whose name is ``name``; None when not listed."""
    return grid(page).evaluate(_ROW_OF_JS, name)


def runs_count(page) -> int:  # noqa: ANN001
    """The number of runs the page's caption says the folder holds."""
    text = page.get_by_text(re.compile(r"^\d+ run\(s\) in")).inner_text(timeout=5_000)
    return int(text.split()[0])


def select_row(page, name: str) -> None:  # noqa: ANN001
    """Tick the row marker of the run named ``name`` (the table draws on a canvas: the click
    goes to the marker's place, found from the table's accessible rows)."""
    row = ui.wait_until(lambda: row_of(page, name), PAGE_S, f"{name} in the runs table")
    box = grid(page).get_by_test_id("stDataFrameResizable").bounding_box()
    rows = grid(page).locator("tr[role=row]").count()  # the header and every run
    height = (box["height"] - 2) / rows
    page.mouse.click(box["x"] + 16, box["y"] + 1 + (row - 0.5) * height)


def pick_run(page, name: str, run_id: str) -> None:  # noqa: ANN001
    """Select the one run ``name`` in the table; its actions show."""
    select_row(page, name)
    ui.wait_until(lambda: page.get_by_text(f"· {run_id}").count() > 0, PAGE_S,
                  f"the actions of {name}")


def button(page, name: str):  # noqa: ANN001, ANN201
    """The main area's button (or download button) labelled ``name``, after its icon."""
    return page.get_by_test_id("stMainBlockContainer").get_by_role(
        "button", name=re.compile(f"{re.escape(name)}$"))


def download(page, name: str) -> bytes:  # noqa: ANN001
    """Press the download button ``name``; the bytes the browser saved."""
    with page.expect_download(timeout=PAGE_S * 1000) as info:
        button(page, name).click()
    return Path(info.value.path()).read_bytes()


def path_is(page, end: str) -> bool:  # noqa: ANN001
    return page.evaluate("document.location.pathname").rstrip("/").endswith(end)


def test_open_in_train_and_explore_its_map(app, visit) -> None:  # noqa: ANN001
    server, ids = app
    page = runs_page(visit, server)
    pick_run(page, "alpha", ids["alpha"])
    button(page, "Open in Train").click()
    ui.wait_until(lambda: ui.url_param(page, "run") == ids["alpha"] and not path_is(page, "runs"),
                  PAGE_S, "the Train page on alpha")
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=PAGE_S * 1000)
    ui.wait_until(lambda: ui.picker_text(page).startswith("alpha ·"), PAGE_S,
                  "alpha in the Train page's picker")

    page.goto(f"{server.url}/runs?who={WHO}")
    pick_run(page, "alpha", ids["alpha"])
    button(page, "Explore its map").click()
    ui.wait_until(lambda: path_is(page, "explore") and ui.url_param(page, "run") == ids["alpha"],
                  PAGE_S, "the Explore page on alpha")
    ui.wait_until(lambda: ui.picker_text(page).startswith("alpha ·"), PAGE_S,
                  "alpha in the Explore page's picker")
    caption = page.get_by_text(re.compile(r"of 128 test images, feature \w+, at step 8"))
    caption.first.wait_for(timeout=PAGE_S * 1000)  # alpha's last map (snapshot_size 128)
    graph = page.locator(".js-plotly-plot").first
    points = ui.wait_until(lambda: graph.evaluate("g => g._fullData && g._fullData[0].x.length"),
                           PAGE_S, "alpha's map drawn")
    assert points == 128


def test_download_zip_holds_the_run(app, visit) -> None:  # noqa: ANN001
    server, ids = app
    run_id = ids["alpha"]
    page = runs_page(visit, server)
    pick_run(page, "alpha", run_id)
    with zipfile.ZipFile(io.BytesIO(download(page, "Download (zip)"))) as zf:
        names = set(zf.namelist())
        config = json.loads(zf.read(f"{run_id}/config.json"))
        metrics = zf.read(f"{run_id}/metrics.jsonl").decode()
    folder = server.runs_dir / run_id
    assert config == json.loads((folder / "config.json").read_text())
    assert config["name"] == "alpha"
    assert metrics == (folder / "metrics.jsonl").read_text()
    assert {json.loads(line)["type"] for line in metrics.splitlines()} >= {"step", "finished"}
    assert f"{run_id}/checkpoints/last.pt" in names


def test_delete_cancel_keeps_the_run_and_delete_removes_it(app, visit) -> None:  # noqa: ANN001
    server, ids = app
    run_id, folder = ids["doomed"], server.runs_dir / ids["doomed"]
    page = runs_page(visit, server)
    before = runs_count(page)
    pick_run(page, "doomed", run_id)
    dialog = page.get_by_role("dialog")

    button(page, "Delete…").click()
    dialog.get_by_text(run_id).wait_for(timeout=PAGE_S * 1000)
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    ui.wait_until(lambda: dialog.count() == 0, PAGE_S, "the dialog to close")
    assert (folder / "config.json").exists()
    page.reload()
    ui.wait_until(lambda: row_of(page, "doomed"), PAGE_S, "doomed still listed")
    assert runs_count(page) == before

    pick_run(page, "doomed", run_id)
    button(page, "Delete…").click()
    dialog.get_by_text(run_id).wait_for(timeout=PAGE_S * 1000)
    dialog.get_by_role("button", name="Delete", exact=True).click()
    ui.wait_until(lambda: not folder.exists(), PAGE_S, "doomed's folder to go")
    ui.wait_until(lambda: runs_count(page) == before - 1, PAGE_S, "one run fewer counted")
    # the caption comes before the table in the page: the new table is drawn a moment later
    ui.wait_until(lambda: row_of(page, "doomed") is None, PAGE_S, "doomed's row to go")
    ui.wait_until(lambda: page.get_by_text(f"· {run_id}").count() == 0, PAGE_S,
                  "nothing selected any more")
    assert (server.runs_dir / ids["alpha"]).exists()


def test_compare_these_two_runs(app, visit) -> None:  # noqa: ANN001
    server, ids = app
    page = runs_page(visit, server)
    select_row(page, "alpha")
    pick = page.get_by_text(f"· {ids['alpha']}")
    ui.wait_until(lambda: pick.count() > 0, PAGE_S, "alpha selected")
    select_row(page, "beta")
    compare = button(page, "Compare these two runs")
    compare.wait_for(timeout=PAGE_S * 1000)
    compare.click()
    # newest first in the table: the older run (alpha) becomes A
    ui.wait_until(lambda: path_is(page, "compare") and ui.url_param(page, "a") == ids["alpha"]
                  and ui.url_param(page, "b") == ids["beta"], PAGE_S, "Compare on alpha, beta")
    ui.wait_until(lambda: ui.picker_text(page, "Run A").startswith("alpha · e2e"), PAGE_S,
                  "alpha as run A")
    assert ui.picker_text(page, "Run B").startswith("beta · e2e")


def test_evaluate_its_checkpoint(app, visit) -> None:  # noqa: ANN001
    server, ids = app
    page = runs_page(visit, server)
    pick_run(page, "alpha", ids["alpha"])
    button(page, "Evaluate its checkpoint").click()
    result = page.get_by_test_id("stAlert").filter(has_text="Evaluated as")
    result.wait_for(timeout=120_000)
    text = result.inner_text()
    match = re.search(r"Evaluated as (\S+):", text)
    assert match and re.search(r"knn top1 0\.\d{3}", text), text
    evaluation = server.runs_dir / match.group(1)
    assert match.group(1).startswith(ids["alpha"] + "-eval-")
    summary = json.loads((evaluation / "summary.json").read_text())
    assert summary["evaluated_from"] == ids["alpha"]
    assert summary["status"] == "finished"
    assert json.loads((evaluation / "config.json").read_text())["name"] == "alpha · eval on shapes"
    page.reload()
    ui.wait_until(lambda: row_of(page, "alpha · eval on shapes"), PAGE_S,
                  "the evaluation in the runs table")


def test_share_archive_and_import_it_back(app, visit) -> None:  # noqa: ANN001
    server, ids = app
    run_id, folder = ids["shared"], server.runs_dir / ids["shared"]
    original = (folder / "config.json").read_text()
    page = runs_page(visit, server)
    pick_run(page, "shared", run_id)
    archive = download(page, "Share (run archive)")
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        names = set(zf.namelist())
    assert {f"{run_id}/config.json", f"{run_id}/share.json", f"{run_id}/metrics.jsonl",
            f"{run_id}/checkpoints/last.pt"} <= names

    # while the run is here, its archive is refused; once it has gone, it comes back
    upload = page.get_by_test_id("stFileUploaderDropzoneInput")
    page.get_by_text("Import a shared run").click()
    upload.set_input_files(files=[{"name": f"{run_id}.zip", "mimeType": "application/zip",
                                   "buffer": archive}])
    button(page, "Import").click()
    page.get_by_text("Cannot import it:").wait_for(timeout=PAGE_S * 1000)
    assert "already in" in page.get_by_test_id("stAlert").filter(
        has_text="Cannot import it").inner_text()

    shutil.rmtree(folder)
    page.reload()
    ui.wait_until(lambda: row_of(page, "alpha"), PAGE_S, "the table after a reload")
    assert row_of(page, "shared") is None
    before = runs_count(page)
    page.get_by_text("Import a shared run").click()
    upload.set_input_files(files=[{"name": f"{run_id}.zip", "mimeType": "application/zip",
                                   "buffer": archive}])
    button(page, "Import").click()
    page.get_by_text(f"Imported {run_id}.").wait_for(timeout=PAGE_S * 1000)
    assert (folder / "config.json").read_text() == original
    assert (folder / "checkpoints" / "last.pt").exists()
    assert json.loads((folder / "summary.json").read_text())["imported_from"] == f"{run_id}.zip"
    page.reload()
    ui.wait_until(lambda: row_of(page, "shared"), PAGE_S, "the imported run in the table")
    assert runs_count(page) == before + 1


# -- the Compare page ------------------------------------------------------------------------
def query_text(page) -> str:  # noqa: ANN001
    return page.get_by_text(re.compile(r"^Query · #\d+")).inner_text(timeout=5_000)


def test_compare_pickers_and_random_query(app, visit) -> None:  # noqa: ANN001
    server, ids = app
    page = visit(server.url, WHO)
    page.goto(f"{server.url}/compare?who={WHO}")
    ui.picker(page, "Run A").wait_for(timeout=PAGE_S * 1000)
    # the reverse of any default pair (which is older A, newer B)
    ui.pick(page, re.compile(r"^beta · e2e ·"), "Run A", timeout=PAGE_S)
    ui.wait_until(lambda: ui.url_param(page, "a") == ids["beta"], PAGE_S, "beta as run A")
    ui.pick(page, re.compile(r"^alpha · e2e ·"), "Run B", timeout=PAGE_S)
    ui.wait_until(lambda: ui.url_param(page, "b") == ids["alpha"], PAGE_S, "alpha as run B")
    assert ui.picker_text(page, "Run A").startswith("beta · e2e")
    assert ui.picker_text(page, "Run B").startswith("alpha · e2e")
    page.get_by_text("Click an image on either map").wait_for(timeout=PAGE_S * 1000)

    random = button(page, "Random query")
    random.click()
    first = ui.wait_until(lambda: query_text(page), PAGE_S, "a query image")
    for side in "AB":
        page.get_by_text(re.compile(f"^{side}: neighbours · precision@10 [01]\\.\\d\\d$")).wait_for(
            timeout=PAGE_S * 1000)
    images = page.get_by_test_id("stMainBlockContainer").locator('[data-testid="stImage"] img')
    ui.wait_until(lambda: images.count() >= 21, PAGE_S, "the query and 10 neighbours per run")

    # a new query (a press may draw the same image again: one in 128)
    def changed() -> str | None:
        random.click()
        page.wait_for_timeout(2_000)
        text = query_text(page)
        return text if text != first else None

    second = ui.wait_until(changed, PAGE_S, "another query", interval=0)
    assert second != first
    assert images.count() >= 21

    # the maps follow the Map choice and each run's step slider (their ids name both)
    def maps() -> list[str]:
        return page.locator(".js-plotly-plot").evaluate_all(
            "gs => gs.map(g => String((g._fullLayout || {}).meta || ''))")

    main = page.get_by_test_id("stMainBlockContainer")
    main.get_by_role("radiogroup", name="Map").get_by_text("PCA", exact=True).click()
    ui.wait_until(lambda: sum(m.endswith("_pca") for m in maps()) == 2, PAGE_S, "two PCA maps")
    slider = main.get_by_test_id("stSlider").filter(has_text="Step of A").get_by_role("slider")
    slider.focus()
    slider.press("Home")
    ui.wait_until(lambda: f"compare_map_a_{ids['beta']}_0_h_pca" in maps(), PAGE_S,
                  "A's map at its first snapshot, step 0")
    assert any(m.startswith(f"compare_map_b_{ids['alpha']}_8_") for m in maps()), maps()


def test_two_runs_started_in_the_same_second_are_two_choices(app, visit) -> None:  # noqa: ANN001
    """A copy of run alpha, as if Train had been pressed twice in one second: same name, owner,
    start second and status. Compare opens the two side by side, and each picker shows its
    own run (a select box tells options apart by their words, so equal labels were one
    choice, and Run B fell back to Run A's run)."""
    server, ids = app
    twin = ids["alpha"].rsplit("-", 1)[0] + "-0000"
    shutil.copytree(server.runs_dir / ids["alpha"], server.runs_dir / twin)
    try:
        page = visit(server.url, WHO)
        page.goto(f"{server.url}/compare?who={WHO}&a={ids['alpha']}&b={twin}")
        page.get_by_text("Click an image on either map").wait_for(timeout=PAGE_S * 1000)
        page.wait_for_timeout(3_000)  # any answer of the browser's to the pickers has come
        assert (ui.url_param(page, "a"), ui.url_param(page, "b")) == (ids["alpha"], twin)
        a, b = ui.picker_text(page, "Run A"), ui.picker_text(page, "Run B")
        assert a.startswith("alpha · e2e ·") and b.startswith("alpha · e2e ·") and a != b
        assert f" · {twin.rsplit('-', 1)[-1]} · " in b
        assert page.get_by_text("Pick two different runs").count() == 0
    finally:
        shutil.rmtree(server.runs_dir / twin)
