"""What a person waits for on Explore with big maps, timed in a real browser (Debian's chromium
through Playwright, the app served by ``streamlit run`` as ``make run`` does).

For each run with a map in ``--runs-dir`` made by ``bench_map_scale.py prepare`` (the 10,000
CIFAR-10 test images; the 50,000-image bank), in one app process whose UMAP compilation was
warmed up at start:

- ``open_to_pca_s`` / ``open_to_umap_s``: opening Explore on the run (its newest snapshot) to
  the PCA map drawn, and to the UMAP map drawn (a map from scratch: no other map of the run
  exists yet);
- ``snapshot_to_umap_s``: picking the run's first snapshot on the slider to its UMAP drawn
  (warm-started from the newest snapshot's map);
- ``hover_s``: the pointer resting on a point to its thumbnail next to the pointer;
- ``click_to_neighbours_s``: a click on a point to the query image and its 10 nearest
  neighbours (searched with faiss in the full embedding space) shown, every image loaded
  and nothing on the page stale; the median of ``--clicks`` clicks on points spread over
  the map;
- ``after_restart_to_umap_s``: the app stopped and started again, opening Explore on the run
  to its UMAP drawn (read back from the run's ``maps/`` folder, where the first app kept it).

The runs' ``maps/`` folders are emptied first, so that the first app computes every map.

"Drawn" means the chart's caption names the map and Plotly has drawn it. Prints one JSON line
per run; screenshots of each map go to ``test-artifacts/``.

    .venv/bin/python bench/bench_map_scale.py prepare --runs-dir runs_bench/maps
    flock /tmp/cpu-bench.lock .venv/bin/python bench/bench_map_browser.py \\
        --runs-dir runs_bench/maps
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.train.store import RunStore  # noqa: E402
from tests.e2e import ui  # noqa: E402
from tests.e2e.app_server import AppServer  # noqa: E402

TIMEOUT_MS = 120_000
#: a point's pixel position on the map, for the point nearest to fractions (fx, fy) of the
#: axes' ranges; its row and hover text
POINT_JS = """([fx, fy]) => {
    const g = document.querySelector(".js-plotly-plot");
    const d = g._fullData[0], L = g._fullLayout, xa = L.xaxis, ya = L.yaxis;
    const box = g.getBoundingClientRect();
    const cx = xa.range[0] + fx * (xa.range[1] - xa.range[0]);
    const cy = ya.range[0] + fy * (ya.range[1] - ya.range[0]);
    let best = 0, bd = Infinity;
    for (let i = 0; i < d.x.length; i++) {
        const dd = (d.x[i] - cx) ** 2 + (d.y[i] - cy) ** 2;
        if (dd < bd) { bd = dd; best = i; }
    }
    return {x: box.left + xa._offset + xa.d2p(d.x[best]),
            y: box.top + ya._offset + ya.d2p(d.y[best]), text: d.text[best]};
}"""
#: the map whose caption starts with ``what`` ("UMAP of", "PCA of") and names ``step`` is drawn
MAP_DRAWN_JS = """([what, step]) => {
    const caption = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
        .some(e => e.innerText.startsWith(what) && e.innerText.includes(`at step ${step}.`));
    const g = document.querySelector(".js-plotly-plot");
    return caption && !!(g && g._fullData && g._fullData[0] && g.querySelector("canvas"));
}"""
#: the hover label Plotly shows for the point under the pointer (the one a click selects: where
#: points overlap it is not always the nearest to the pointer)
HOVER_LABEL_JS = """() => {
    const label = document.querySelector(".hoverlayer .hovertext");
    return label ? label.textContent : null;
}"""
#: the query panel shows ``text`` as its query, its neighbours' images loaded, nothing stale
NEIGHBOURS_JS = """([text, k]) => {
    const main = document.querySelector('[data-testid="stMainBlockContainer"]');
    if (!main.innerText.includes("Query · " + text + "\\n")) return false;
    if (!main.innerText.includes("nearest neighbours (cosine")) return false;
    if (main.querySelector('[data-stale="true"]')) return false;
    const imgs = [...main.querySelectorAll('[data-testid="stImage"] img')];
    return imgs.length >= k + 1 && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""


def emit(**row: object) -> None:
    print(json.dumps(row), flush=True)


def wait_js(page, js: str, arg: object) -> None:  # noqa: ANN001
    page.wait_for_function(js, arg=arg, polling="raf", timeout=TIMEOUT_MS)


def timed_map(page, what: str, step: int, start: float) -> float:  # noqa: ANN001
    wait_js(page, MAP_DRAWN_JS, [what, step])
    return time.perf_counter() - start


def hover(page, fx: float, fy: float) -> float:  # noqa: ANN001
    p = page.evaluate(POINT_JS, [fx, fy])
    page.mouse.move(p["x"] - 40, p["y"] - 40)
    page.wait_for_timeout(300)
    t = time.perf_counter()
    page.mouse.move(p["x"], p["y"])
    page.wait_for_function("() => { const e = document.getElementById('ssl-hover-thumb');"
                           " return e && e.style.display === 'block'; }", polling="raf",
                           timeout=30_000)
    return time.perf_counter() - t


def click(page, fx: float, fy: float) -> float:  # noqa: ANN001
    p = page.evaluate(POINT_JS, [fx, fy])
    page.mouse.move(p["x"], p["y"])
    page.wait_for_timeout(300)
    text = page.evaluate(HOVER_LABEL_JS) or p["text"]
    t = time.perf_counter()
    page.mouse.click(p["x"], p["y"])
    try:
        wait_js(page, NEIGHBOURS_JS, [text, 10])
    except Exception:
        ui.shot(page, "bench-map-click-failed")
        raise
    return time.perf_counter() - t


def one_run(page, url: str, run_id: str, points: int, steps: list[int],  # noqa: ANN001
            clicks: int) -> dict:
    row: dict = {"run": run_id, "points": points}
    t = time.perf_counter()
    page.goto(f"{url}/explore?who=bench&run={run_id}")
    row["open_to_pca_s"] = timed_map(page, "PCA of", steps[-1], t)
    row["open_to_umap_s"] = timed_map(page, "UMAP of", steps[-1], t)
    page.wait_for_timeout(1500)
    ui.shot(page, f"bench-map-{points}")
    spots = [(0.5, 0.5), (0.3, 0.3), (0.7, 0.6), (0.4, 0.7), (0.6, 0.35), (0.25, 0.6),
             (0.75, 0.3)][:clicks]
    row["hover_s"] = round(statistics.median(hover(page, *s) for s in spots[:3]), 3)
    times = [click(page, *s) for s in spots]
    row["click_to_neighbours_s"] = round(statistics.median(times), 3)
    row["click_to_neighbours_max_s"] = round(max(times), 3)
    ui.shot(page, f"bench-map-{points}-neighbours")
    slider = page.get_by_test_id("stMainBlockContainer").get_by_role("slider").first
    if len(steps) > 1:
        slider.focus()
        t = time.perf_counter()
        slider.press("Home")  # the first snapshot
        row["snapshot_to_umap_s"] = timed_map(page, "UMAP of", steps[0], t)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs_bench" / "maps")
    ap.add_argument("--clicks", type=int, default=7)
    args = ap.parse_args()
    runs = [(r.id, len(r.load_snapshot()["h"]), r.snapshots())
            for r in RunStore(args.runs_dir).list() if r.snapshots()]
    if not runs:
        sys.exit(f"no run with a map in {args.runs_dir}: run bench_map_scale.py prepare")
    from playwright.sync_api import sync_playwright

    store = RunStore(args.runs_dir)
    for run_id, _, _ in runs:
        shutil.rmtree(store.path_of(run_id) / "maps", ignore_errors=True)
    runs.sort(key=lambda r: r[1])
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = ui.launch(pw)
        for restarted in (False, True):
            app = AppServer(args.runs_dir, Path(tmp) / f"streamlit-{restarted}.log",
                            env={"SSL_STUDIO_UMAP_WARMUP": "1"}).start()
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.set_default_timeout(TIMEOUT_MS)
                ui.open_as(page, app.url, "bench")
                if not restarted:
                    page.wait_for_timeout(20_000)  # the app's UMAP warm-up (BENCHMARKS.md)
                for run_id, points, steps in runs:
                    if restarted:
                        t = time.perf_counter()
                        page.goto(f"{app.url}/explore?who=bench&run={run_id}")
                        emit(bench="map_browser", run=run_id, points=points,
                             after_restart_to_umap_s=round(
                                 timed_map(page, "UMAP of", steps[-1], t), 3))
                    else:
                        emit(bench="map_browser", **one_run(page, app.url, run_id, points,
                                                            steps, args.clicks))
                page.context.close()
            finally:
                app.stop()
        browser.close()


if __name__ == "__main__":
    main()
