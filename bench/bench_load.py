"""Load: simulated participants share one app server, each starting and stopping runs in a
real browser (Debian's chromium through Playwright) for a given time.

The script starts the app itself on 127.0.0.1 with a fresh runs folder and the server's
default limits (one run at a time on a CPU, the rest queued, two queued runs per participant).
Each participant is a browser context with its own name; in turn, each presses Train, holds
the run a few seconds, then presses Stop (or Cancel while it is queued), and starts again.
Participants never block one another: each is a small state machine that the loop advances
without waiting, so a slow page delays only its own participant. Loops are bounded in time
and in count. At the end every participant stops what it has, and the script reports one JSON
object:

- ``exceptions``: faults (a Streamlit exception box on a page, a press not answered within
  ``ANSWER_S``), with the participant and the message; ``refusals``: starts the server
  refused (the queue cap), which are answers, not faults;
- ``latency_s``: how long a press took to show its answer on the page (Train: the new run on
  screen; Stop or Cancel: the run ended), median and maximum;
- ``unasked_runs``: per participant, runs made beyond its presses (a press delivered twice);
- ``runs_live``: final statuses on disk while the server still runs, and ``untruthful``: runs
  whose summary says queued, loading, running or paused but whose heartbeat is stale (its
  owner is gone); ``runs_after_sigterm``: statuses once the server was sent SIGTERM, and
  ``not_ended``: runs not finished, stopped, failed or interrupted then (should be empty);
- ``rss_mb_start``: the server's memory once warm and idle (after a first round in which
  every participant trained and stopped one run, so the data set, torch, models, evaluations
  and snapshots have all been made, and every run ended); ``rss_mb_end``: idle again after the
  loop (every run ended); ``rss_growth``; ``rss_mb_series`` every 30 s in between (runs live);
  ``threads_before`` (the server before any browser), ``threads_start`` and ``threads_end``
  (idle with the twenty pages open: the fewest seen over 10 s, since a page's rerun has a
  thread while it draws) and ``threads_after_close`` (the pages closed; back to
  ``threads_before`` when nothing is left behind); ``tree_rss_mb_start`` and ``_end``: the same for
  the server with every process under it (the training processes and their fork server);
- ``health_s``: the server's answer time to its health check, polled every second by a
  thread of its own (median and max): a stalled server shows here, whatever the browsers do;
  ``driver_pause_s``: the longest time this script's loop was away from the participants (a
  slow browser call), so a stall of the browsers is told apart from one of the server.

Run it alone on the machine (it uses the CPU fully)::

    python bench/bench_load.py --participants 20 --minutes 10     # the workshop case
    python bench/bench_load.py --participants 3 --minutes 1       # a quick check
    python bench/bench_load.py --browser-nice 10    # the browsers yield the CPU to the server
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import ui  # noqa: E402
from tests.e2e.app_server import AppServer, process_tree  # noqa: E402

LIVE = ("queued", "loading", "running", "paused")
ANSWER_S = 60  # a press must show its answer on the page within this long
#: a click waits at most this long for its button (a page mid-redraw); it is tried again on the
#: participant's next turn, so one busy page never holds up the others
CLICK_MS = 2_000
#: a refusal on the page counts only this long after the press, with no run made meanwhile: the
#: alert drawn for the press before stays up until the server reruns the page
REFUSAL_S = 10
SETTLE_S = 120  # at the end: how long runs may take to end after their Stop
RSS_EVERY_S = 30  # the server's memory is sampled this often
STALE_S = 30  # a live status whose heartbeat is older than this has no owner (RunDir.status)


@dataclass
class Participant:
    """One simulated participant: a browser page and where it is in its loop."""

    name: str
    page: Any
    state: str = "idle"  # idle -> starting -> started -> stopping -> idle
    run_id: str | None = None
    since: float = 0.0  # when the current press was made
    until: float = 0.0  # when the current wait ends
    started: list[str] = field(default_factory=list)
    actions: int = 0
    presses: int = 0  # Train presses made (each makes one run, or one refusal)
    refused: int = 0
    history: list[str] = field(default_factory=list)  # "HH:MM:SS what" for each move

    def move(self, state: str, what: str) -> None:
        """Go to ``state``; ``what`` happened (kept in :attr:`history`)."""
        try:
            shown = ui.url_param(self.page, "run")
        except Exception:  # noqa: BLE001 — a page mid-navigation
            shown = "?"
        self.history.append(f"{time.strftime('%H:%M:%S')} {what} -> {state}"
                            f" (run {self.run_id}, page on {shown})")
        self.state = state


def summary(runs: Path, run_id: str) -> dict[str, Any]:
    try:
        return json.loads((runs / run_id / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def status(runs: Path, run_id: str) -> str:
    return summary(runs, run_id).get("status", "?")


def answered(p: Participant, report: dict[str, Any], kind: str) -> None:
    report["latencies"].setdefault(kind, []).append(time.time() - p.since)
    p.actions += 1


def step(p: Participant, report: dict[str, Any], rng: random.Random) -> None:
    """Advance one participant by at most one short browser call; never waits for an answer."""
    now = time.time()
    if now < p.until:
        return
    page = p.page
    if page.get_by_test_id("stException").count():
        report["exceptions"].append({"who": p.name, "error": page.get_by_test_id(
            "stException").first.inner_text()[:300]})
    if p.state == "idle":
        if click(ui.train_button(page)):
            p.presses += 1
            p.since = now
            p.move("starting", "pressed Train")
    elif p.state == "starting":
        run_id = ui.url_param(page, "run")
        if (run_id and run_id not in p.started and made_after(run_id, p.since)
                and on_page(page, run_id)):
            p.run_id = run_id
            p.started.append(run_id)
            answered(p, report, "train")
            p.until = now + rng.uniform(3, 10)
            p.move("started", "its run on screen")
        elif (now - p.since > REFUSAL_S  # the alert may still be the last refusal's
              and page.get_by_test_id("stAlert").filter(has_text="Cannot start the run").count()
              and not made_since(report["runs_dir"], p.name, p.since)):
            report["refusals"].append({"who": p.name})
            p.refused += 1
            p.until = now + rng.uniform(3, 8)
            p.move("idle", "refused")
        elif now - p.since > ANSWER_S:
            raise TimeoutError(f"no new run on screen {ANSWER_S} s after Train")
    elif p.state == "started":
        stop = ui.main_button(page, "Stop|Cancel")
        if stop.count() and on_page(page, p.run_id):
            if click(stop.first):
                p.since = now
                p.move("stopping", "pressed Stop or Cancel")
        elif status(report["runs_dir"], p.run_id) not in LIVE:
            p.until = now + rng.uniform(1, 4)
            p.move("idle", f"its run ended by itself ({status(report['runs_dir'], p.run_id)})")
        elif now - p.until > ANSWER_S:
            raise TimeoutError("no Stop or Cancel button on the run's page")
    elif p.state == "stopping":
        if status(report["runs_dir"], p.run_id) not in LIVE:
            answered(p, report, "stop")
            p.until = now + rng.uniform(1, 4)
            p.move("idle", "its run ended")
        elif now - p.since > ANSWER_S:
            raise TimeoutError(f"the run still live {ANSWER_S} s after Stop")


def made_after(run_id: str, t: float) -> bool:
    """Whether run ``run_id`` was made at ``t`` or later (its id starts with the second it was
    made). A page still on an earlier run (the warm-up's, or one of an earlier press) is not
    the answer to a press at ``t``."""
    return run_id >= time.strftime("%Y%m%d-%H%M%S", time.localtime(t - 1))


def made_since(runs: Path, who: str, t: float) -> bool:
    """Whether a run of ``who`` was made at ``t`` or later (a press's run exists on disk while
    the page still shows the previous press's refusal)."""
    return any(made_after(d.name, t) and summary(runs, d.name).get("owner") == who
               for d in runs.iterdir())


def on_page(page: Any, run_id: str) -> bool:
    """Whether the page is drawn for ``run_id``: the run picker names it (by its start time).
    A Stop still standing from the draw before a Train press belongs to the earlier run, and
    pressing it stops that one."""
    clock = f"{run_id[9:11]}:{run_id[11:13]}:{run_id[13:15]}"
    try:
        return clock in ui.picker(page, "Run").input_value(timeout=500)
    except Exception:  # noqa: BLE001 — a page mid-redraw: look again on the next turn
        return False


def click(button: Any) -> bool:
    """Click ``button`` if it is ready within :data:`CLICK_MS`; False (try again later) if not.

    Readiness is checked by a trial click (which clicks nothing), so a timeout never leaves
    a click behind that the participant would not know about."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        button.click(timeout=CLICK_MS, trial=True)
    except PlaywrightTimeout:
        return False
    button.click(timeout=ANSWER_S * 1000, no_wait_after=True)
    return True


class HealthProbe(threading.Thread):
    """Polls the server's health check every second and keeps the answer times."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.times, self.done = f"{url}/_stcore/health", [], threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            t0 = time.time()
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url, timeout=ANSWER_S).read()
            self.times.append(time.time() - t0)


def settle(runs: Path) -> list[str]:
    """Wait until no run is live (at most :data:`SETTLE_S`); the ids of every run."""
    ids = [d.name for d in runs.iterdir() if (d / "config.json").exists()]
    deadline = time.time() + SETTLE_S
    while time.time() < deadline and any(status(runs, r) in LIVE for r in ids):
        time.sleep(1)
    time.sleep(5)  # threads wind down
    return ids


def warm_up(people: list[Participant], runs: Path) -> None:
    """Every participant trains one run for a few seconds and stops it; returns when all ended."""
    for p in people:  # a page still drawing is pressed again until the press lands
        ui.wait_until(lambda p=p: click(ui.train_button(p.page)), ANSWER_S, f"{p.name}'s Train")
        p.presses += 1
        p.move("idle", "warm-up: pressed Train")
    time.sleep(8)
    for p in people:
        ui.wait_until(lambda p=p: click(ui.main_button(p.page, "Stop|Cancel").first),
                      3 * ANSWER_S, f"{p.name}'s Stop or Cancel")  # twenty pages drawing at once
        p.move("idle", "warm-up: pressed Stop or Cancel")
    settle(runs)


def renice_browser(niceness: int) -> int:
    """Lower the priority of every chromium process under this one, so the server is served
    first, as it is when the participants' browsers run on their own laptops. Chromium sets
    some of its renderers' priority itself, so the loop calls this every few seconds.
    Returns how many processes were reniced."""
    browser = [pid for pid, name in process_tree(os.getpid()).items()
               if name.startswith("chrom")]
    for pid in browser:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
    return len(browser)


def stale(runs: Path, run_id: str) -> bool:
    """A live status on disk whose heartbeat is old: nobody owns the run any more."""
    s = summary(runs, run_id)
    return s.get("status") in LIVE and time.time() - float(s.get("heartbeat", 0)) > STALE_S


def quantiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"n": len(values), "median": round(values[len(values) // 2], 2),
            "max": round(values[-1], 2)} if values else {"n": 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--max-actions", type=int, default=200, help="per participant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="also write the report here (JSON)")
    ap.add_argument("--keep", action="store_true", help="keep the runs folder and server log")
    ap.add_argument("--browser-nice", type=int, default=0,
                    help="run the browsers at this niceness (e.g. 10) so the server comes first, "
                         "as when the participants' browsers run on their own machines")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="ssl-studio-load-"))
    runs = work / "runs"
    app = AppServer(runs, work / "streamlit.log").start()
    report: dict[str, Any] = {"participants": args.participants, "minutes": args.minutes,
                              "exceptions": [], "refusals": [], "latencies": {},
                              "rss_mb_series": [], "threads_before": app.idle_threads(),
                              "runs_dir": runs}
    try:
        with sync_playwright() as pw:
            browser = ui.launch(pw)
            people = []
            for i in range(args.participants):
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.set_default_timeout(ANSWER_S * 1000)
                ui.open_as(page, app.url, f"p{i:02d}")
                ui.set_seconds(page, 60)
                people.append(Participant(f"p{i:02d}", page))
            if args.browser_nice:
                renice_browser(args.browser_nice)
            warm_up(people, runs)
            report["rss_mb_start"] = round(app.rss_mb(), 1)
            report["tree_rss_mb_start"] = round(app.tree_rss_mb(), 1)
            report["threads_start"] = app.idle_threads()
            probe = HealthProbe(app.url)
            probe.start()
            t0 = time.time()
            end = t0 + args.minutes * 60
            next_sample = next_renice = t0
            driver_pause, last_pass = 0.0, t0
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
                        p.until = time.time() + 2
                        p.move("started" if p.run_id else "idle", f"fault: {str(exc)[:80]}")
                if args.browser_nice and time.time() >= next_renice:  # chromium re-sets some
                    renice_browser(args.browser_nice)
                    next_renice = time.time() + 5
                if time.time() >= next_sample:  # memory over time: a leak climbs steadily
                    report["rss_mb_series"].append(round(app.rss_mb()))
                    next_sample += RSS_EVERY_S
                driver_pause = max(driver_pause, time.time() - last_pass)
                time.sleep(0.2)
                last_pass = time.time()
            probe.done.set()
            report["health_s"] = quantiles(probe.times)
            report["driver_pause_s"] = round(driver_pause, 1)
            report["seconds"] = round(time.time() - t0, 1)
            for p in people:  # the end of the session: everyone stops what they have
                with contextlib.suppress(Exception):
                    stop = ui.main_button(p.page, "Stop|Cancel")
                    if stop.count():
                        stop.first.click()
            ids = settle(runs)
            report["runs_live"] = {s: sum(status(runs, r) == s for r in ids)
                                   for s in sorted({status(runs, r) for r in ids})}
            report["untruthful"] = [r for r in ids if stale(runs, r)]
            owned = {p.name: sum(summary(runs, r).get("owner") == p.name for r in ids)
                     for p in people}
            report["unasked_runs"] = {p.name: extra for p in people
                                      if (extra := owned[p.name] - p.presses + p.refused) > 0}
            faulty = {e["who"] for e in report["exceptions"]} | set(report["unasked_runs"])
            report["histories"] = {p.name: [f"{p.presses} presses, {p.refused} refused, "
                                            f"{owned[p.name]} runs", *p.history]
                                   for p in people if p.name in faulty}
            report["actions"] = sum(p.actions for p in people)
            report["rss_mb_end"] = round(app.rss_mb(), 1)
            report["tree_rss_mb_end"] = round(app.tree_rss_mb(), 1)
            report["rss_growth"] = round(report["rss_mb_end"] / report["rss_mb_start"] - 1, 3)
            report["threads_end"] = app.idle_threads()
            browser.close()
            report["threads_after_close"] = app.idle_threads(20.0)
    finally:
        app.stop()  # SIGTERM: every run must end in a terminal status
        ids = [d.name for d in runs.iterdir() if (d / "config.json").exists()]
        report["runs_after_sigterm"] = {s: sum(status(runs, r) == s for r in ids)
                                        for s in sorted({status(runs, r) for r in ids})}
        report["not_ended"] = [r for r in ids if status(runs, r) in LIVE]
        if args.keep:
            print(f"runs and server log kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report["refusals"] = len(report["refusals"])
    report["latency_s"] = {k: quantiles(v) for k, v in report.pop("latencies").items()}
    report.pop("runs_dir")
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
