"""Screenshots of the augmentation studio for the README, from a folder data set.

    .venv/bin/python docs/studio_screenshots.py WORK_DIR [--sweep-runs DIR] [--seconds 60]

Writes a folder of images in ImageFolder layout (the built-in ``shapes`` images saved as PNG
files, one sub-folder per shape: a stand-in for a folder of your own), trains SimCLR on it with
and without colour augmentation, opens the Explore page in Debian's chromium and takes
``docs/screenshots/studio_profile.png`` (the two runs' invariance profiles overlaid) and
``studio_cloud.png`` (a view cloud on the map). With ``--sweep-runs`` (a runs directory holding
a sweep made by ``python -m engine sweep``) also ``studio_sweep.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "docs" / "screenshots"


def write_folder(root: Path, per_class: int = 400) -> Path:
    """PNG files of shapes images in ``root/<shape>/``; returns ``root``."""
    from PIL import Image

    from engine.config import DataConfig
    from engine.data import load_dataset

    ds = load_dataset(DataConfig(name="shapes", image_size=32, train_size=4000, test_size=10))
    counts: dict[int, int] = {}
    for image, label in zip(ds.train.images, ds.train.labels.tolist(), strict=True):
        if counts.get(label, 0) >= per_class:
            continue
        counts[label] = counts.get(label, 0) + 1
        folder = root / ds.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{counts[label]:04d}.png")
    return root


def train_runs(images: Path, runs: Path, seconds: float) -> list[str]:
    from engine.config import RunConfig
    from engine.train.runner import run_foreground
    from engine.train.store import RunStore

    ids = []
    for preset, name in (("simclr", "my images, SimCLR"),
                         ("simclr_no_colour", "my images, no colour jitter")):
        cfg = RunConfig().with_overrides({
            "data.name": "folder", "data.root": str(images), "data.image_size": 32,
            "model.backbone": "small_cnn", "model.width": 16, "method.name": "simclr",
            "augment.preset": preset, "train.device": "cpu", "train.batch_size": 128,
            "train.max_seconds": seconds, "train.epochs": 1000, "name": name,
            "eval.every_seconds": 30, "eval.diagnostics_every_steps": 0})
        run, last = run_foreground(cfg, RunStore(runs))
        print(name, run.id, last.get("knn_top1"), flush=True)
        ids.append(run.id)
    return ids


@contextlib.contextmanager
def explore_page(runs: Path, run_id: str, env: dict[str, str] | None = None) -> Iterator[Any]:
    """The app on ``runs`` and a chromium page on its Explore page for ``run_id``; both closed
    afterwards."""
    from playwright.sync_api import sync_playwright

    from tests.e2e import ui
    from tests.e2e.app_server import AppServer

    OUT.mkdir(parents=True, exist_ok=True)
    app = AppServer(runs, runs / "streamlit.log", env=env).start()
    try:
        with sync_playwright() as pw:
            browser = ui.launch(pw)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(120_000)
            ui.open_as(page, app.url, "demo")
            page.goto(f"{app.url}/explore?who=demo&run={run_id}")
            yield page
            browser.close()
    finally:
        app.stop()


def shoot(runs: Path, ids: list[str], sweep_runs: Path | None) -> None:
    from tests.e2e import ui

    with explore_page(runs, ids[0], {"SSL_STUDIO_UMAP_WARMUP": "1"}) as page:
        page.get_by_role("heading", name="Augmentation studio").wait_for()
        page.wait_for_timeout(3000)  # let the page settle before opening a select box
        ui.wait_until(lambda: _choose(page, "Overlay another run", "no colour jitter"), 60,
                      "the overlaid run")
        compute = page.get_by_role("button", name=re.compile("Compute the invariance"))
        ui.wait_until(lambda: _bars(page) == 2 or _press(compute), 900, "two profiles",
                      interval=3.0)
        page.wait_for_timeout(2000)
        _panel(page).screenshot(path=str(OUT / "studio_profile.png"))
        page.get_by_role("tab", name="View cloud").click()
        ui.wait_until(lambda: _choose(page, "Views from", "color_jitter"), 60, "one op")
        page.get_by_role("button", name=re.compile("Draw the view cloud")).click()
        page.get_by_text("View cloud of image").wait_for()
        page.wait_for_timeout(2000)
        _panel(page).screenshot(path=str(OUT / "studio_cloud.png"))
    if sweep_runs is not None:
        _shoot_sweep(sweep_runs)


def _choose(page, box: str, option: str) -> bool:  # noqa: ANN001
    """Open the select box ``box`` and pick the option containing ``option``."""
    page.get_by_role("combobox", name=box).click()
    page.get_by_role("option").filter(has_text=option).first.click(timeout=5_000)
    return True


def _panel(page):  # noqa: ANN001, ANN202
    """The studio tab on screen."""
    return page.locator('[role="tabpanel"]:visible').first


def _bars(page) -> int:  # noqa: ANN001
    """Bar traces in the profile chart (one per run whose profile is shown)."""
    return int(page.evaluate("""() => Math.max(0, ...[...document.querySelectorAll(
        '.js-plotly-plot')].map(g => (g._fullData || []).filter(t => t.type === 'bar').length))"""))


def _press(buttons) -> bool:  # noqa: ANN001
    """Press the first visible compute button, if any; never done by itself (returns False)."""
    if buttons.count():
        buttons.first.click()
    return False


def _shoot_sweep(runs: Path) -> None:
    from engine.train.store import RunStore
    from engine.train.sweep import Sweep

    sweep = Sweep.load(runs, Sweep.list(runs)[0])
    run_id = sweep.cells[0].run_id
    assert RunStore(runs).get(run_id)
    with explore_page(runs, run_id) as page:
        page.get_by_role("tab", name="Ablation sweep").click()
        page.get_by_text("runs finished").wait_for()
        page.wait_for_timeout(2000)
        _panel(page).screenshot(path=str(OUT / "studio_sweep.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--sweep-runs", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--reuse", action="store_true", help="the runs of an earlier call")
    args = parser.parse_args()
    images, runs = args.work / "my_images", args.work / "runs"
    if not images.exists():
        write_folder(images)
    if args.reuse and runs.exists():
        from engine.train.store import RunStore

        ids = sorted(r.id for r in RunStore(runs).list())
    else:
        if runs.exists():
            shutil.rmtree(runs)
        ids = train_runs(images, runs, args.seconds)
    shoot(runs, ids, args.sweep_runs)


if __name__ == "__main__":
    main()
