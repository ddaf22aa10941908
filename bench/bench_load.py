"""Load: simulated participants share one app server, each starting and stopping runs in a
real browser (Debian's chromium through Playwright) for a given time.

The script starts the app itself on 127.0.0.1 with a fresh runs folder and the server's
default limits (one run at a time on a CPU, the rest queued, two queued runs per participant).
Each participant is a browser context with its own name; in turn, each presses Train, holds
the run a few seconds, then presses Stop (or Cancel while it is queued), and starts again.
Loops are bounded in time and in count. At the end every participant stops what it has, and
the script reports one JSON object:

- ``exceptions``: what went wrong in the browser (a Streamlit exception box, a step that timed
  out), with the participant and the message; ``refusals``: starts the server refused (the
  queue cap), which are answers, not faults;
- ``runs``: final statuses on disk, and ``untruthful``: runs whose summary still says queued,
  loading, running or paused once everything has ended (should be empty);
- ``rss_mb`` at start (pages open, nothing trained), once warm (the first run ended: data
  set, torch and a model loaded once per process) and at the end; ``rss_growth_since_warm``;
  ``threads`` at start and end.

Run it alone on the machine (it uses the CPU fully)::

    python bench/bench_load.py --participants 20 --minutes 10     # the workshop case
    python bench/bench_load.py --participants 3 --minutes 1       # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import ui  # noqa: E402
from tests.e2e.app_server import AppServer  # noqa: E402

LIVE = ("queued", "loading", "running", "paused")
STEP_TIMEOUT_S = 30  # one browser step (a click and its answer) may take this long
SETTLE_S = 120  # at the end: how long runs may take to end after their Stop


@dataclass
class Participant:
    """One simulated participant: a browser page and where it is in its loop."""

    name: str
    page: Any
    state: str = "idle"  # idle -> started -> idle
    run_id: str | None = None
    until: float = 0.0  # when the current state's wait ends
    started: list[str] = field(default_factory=list)
    actions: int = 0


def status(runs: Path, run_id: str) -> str:
    try:
        return json.loads((runs / run_id / "summary.json").read_text()).get("status", "?")
    except (OSError, ValueError):
        return "?"


def step(p: Participant, report: dict[str, Any], rng: random.Random) -> None:
    """Advance one participant by one action, if its wait is over."""
    now = time.time()
    if now < p.until:
        return
    page = p.page
    if page.get_by_test_id("stException").count():
        report["exceptions"].append({"who": p.name, "error": page.get_by_test_id(
            "stException").first.inner_text()[:300]})
    if p.state == "idle":
        known = set(p.started)
        ui.train_button(page).click()
        try:
            run_id = ui.wait_until(
                lambda: (r := ui.url_param(page, "run")) not in known and r, 10, "a new run")
        except AssertionError:
            alert = page.get_by_test_id("stAlert").filter(has_text="Cannot start the run")
            if alert.count():
                report["refusals"].append({"who": p.name, "message": alert.first.inner_text()})
                p.until = now + rng.uniform(3, 8)
                return
            raise
        p.run_id = run_id
        p.started.append(run_id)
        p.state = "started"
        p.until = time.time() + rng.uniform(3, 10)
    elif p.state == "started":
        stop = ui.main_button(page, "Stop|Cancel")
        if stop.count():
            stop.first.click(timeout=STEP_TIMEOUT_S * 1000)
            ui.wait_until(lambda: ui.status_on_screen(page) in ui.ENDED, STEP_TIMEOUT_S,
                          f"{p.name}'s run to end")
        p.state = "idle"
        p.until = time.time() + rng.uniform(1, 4)
    p.actions += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--max-actions", type=int, default=200, help="per participant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="also write the report here (JSON)")
    ap.add_argument("--keep", action="store_true", help="keep the runs folder and server log")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="ssl-studio-load-"))
    runs = work / "runs"
    app = AppServer(runs, work / "streamlit.log").start()
    report: dict[str, Any] = {"participants": args.participants, "minutes": args.minutes,
                              "exceptions": [], "refusals": []}
    try:
        with sync_playwright() as pw:
            browser = ui.launch(pw)
            people = []
            for i in range(args.participants):
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.set_default_timeout(STEP_TIMEOUT_S * 1000)
                ui.open_as(page, app.url, f"p{i:02d}")
                ui.set_seconds(page, 60)
                people.append(Participant(f"p{i:02d}", page))
            report["rss_mb_start"] = round(app.rss_mb(), 1)
            report["threads_start"] = app.threads()
            t0 = time.time()
            end = t0 + args.minutes * 60
            while time.time() < end and any(p.actions < args.max_actions for p in people):
                for p in people:
                    if time.time() >= end:
                        break
                    if p.actions >= args.max_actions:
                        continue
                    try:
                        step(p, report, rng)
                    except Exception as exc:  # noqa: BLE001 — every fault is reported
                        report["exceptions"].append({"who": p.name, "error": str(exc)[:300],
                                                     "run": p.run_id, "url": p.page.url})
                        with contextlib.suppress(Exception):
                            ui.shot(p.page, f"load-{p.name}-{len(report['exceptions'])}")
                        p.state, p.until = "started", time.time() + 2  # try to stop it
                if "rss_mb_warm" not in report and any(
                        status(runs, d.name) in ui.ENDED for d in runs.iterdir()):
                    report["rss_mb_warm"] = round(app.rss_mb(), 1)  # data, torch, one model
                time.sleep(0.2)
            report["seconds"] = round(time.time() - t0, 1)
            for p in people:  # the end of the session: everyone stops what they have
                stop = ui.main_button(p.page, "Stop|Cancel")
                try:
                    if p.state == "started" and stop.count():
                        stop.first.click()
                except Exception as exc:  # noqa: BLE001
                    report["exceptions"].append({"who": p.name, "error": str(exc)[:300]})
            ids = [d.name for d in runs.iterdir() if (d / "config.json").exists()]
            deadline = time.time() + SETTLE_S
            while time.time() < deadline and any(status(runs, r) in LIVE for r in ids):
                time.sleep(1)
            time.sleep(3)  # threads wind down
            report["runs"] = {s: sum(status(runs, r) == s for r in ids)
                              for s in sorted({status(runs, r) for r in ids})}
            report["untruthful"] = [r for r in ids if status(runs, r) in LIVE]
            report["actions"] = sum(p.actions for p in people)
            report["rss_mb_end"] = round(app.rss_mb(), 1)
            warm = report.get("rss_mb_warm") or report["rss_mb_start"]
            report["rss_growth_since_warm"] = round(report["rss_mb_end"] / warm - 1, 3)
            report["threads_end"] = app.threads()
            browser.close()
    finally:
        app.stop()
        if args.keep:
            print(f"runs and server log kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report["refusals"] = len(report["refusals"])
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
