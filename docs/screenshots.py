"""Screenshots of every page for the README, taken from a real app over real runs.

    .venv/bin/python docs/screenshots.py --runs-dir runs_demo --run A --compare A B

Starts the app on a free port against ``--runs-dir`` (runs made beforehand with
``python -m engine train``), opens each page in Debian's chromium through Playwright, and
writes ``docs/screenshots/<page>.png``. On Explore it clicks the point nearest the middle of
the map so the neighbour panel is filled. On Lessons (``--lesson``) it records a prediction
(the question's first option), runs the lesson and shows its outcome and what it means.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.app_server import free_port as _free_port  # noqa: E402
from tests.e2e.test_browser import _click_first_point  # noqa: E402
from tests.e2e.ui import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def start_app(runs_dir: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
           "--server.fileWatcherType", "none", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "SSL_STUDIO_RUNS": str(runs_dir.resolve())}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health").read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the app did not start")


def shoot(page, url: str, name: str, settle_ms: int = 6000, action=None) -> None:  # noqa: ANN001
    page.goto(url)
    page.wait_for_timeout(settle_ms)
    if action is not None:
        action(page)
        page.wait_for_timeout(settle_ms)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"wrote {OUT / f'{name}.png'}")


def predict_and_run(lesson: str):  # noqa: ANN201
    """The Lessons page's action: answer the lesson's question with its first option, run the
    lesson, and scroll to the answer against the outcome and what it means."""
    from engine.lessons import load_lesson

    option = load_lesson(lesson).predict.options[0]

    def act(page) -> None:  # noqa: ANN001
        main = page.get_by_test_id("stMainBlockContainer")
        main.get_by_test_id("stRadio").get_by_text(option, exact=True).click()
        main.get_by_role("button", name="Record my prediction").click()
        page.wait_for_timeout(3000)
        main.get_by_role("button", name="Run this lesson").click()
        main.get_by_text("What it means").wait_for(timeout=600_000)
        page.wait_for_timeout(3000)
        main.get_by_text("What it means").scroll_into_view_if_needed()
        page.mouse.wheel(0, 400)

    return act


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs-dir", type=Path, required=True)
    p.add_argument("--run", required=True, help="run id shown on Train and Explore")
    p.add_argument("--compare", nargs=2, required=True, metavar=("A", "B"))
    p.add_argument("--lesson", default="", help="a lesson with a question, predicted and run "
                   "on the Lessons page")
    p.add_argument("--pages", nargs="*", default=["train", "explore", "compare", "runs"],
                   help="the pages to retake (default: all; lessons with --lesson)")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    proc = start_app(args.runs_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            a, b = args.compare
            if "train" in args.pages:
                shoot(page, f"{url}/?run={args.run}&who=demo", "train", 20000)
            if "explore" in args.pages:
                shoot(page, f"{url}/explore?run={args.run}&who=demo", "explore", 30000,
                      _click_first_point)
            if "compare" in args.pages:
                shoot(page, f"{url}/compare?a={a}&b={b}&who=demo", "compare", 15000)
            if "runs" in args.pages:
                shoot(page, f"{url}/runs?who=demo", "runs")
            if args.lesson:
                shoot(page, f"{url}/lessons?lesson={args.lesson}&who=demo", "lessons", 6000,
                      predict_and_run(args.lesson))
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


if __name__ == "__main__":
    main()
