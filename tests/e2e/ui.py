"""Driving the app's pages in Debian's chromium: launching the browser, a participant's first
visit, the Train page's settings, buttons and what the page says about the run on screen."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SSL_STUDIO_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: statuses after which a run does not change by itself
ENDED = ("finished", "stopped", "failed", "interrupted")


def launch(pw: Any) -> Any:
    """A headless chromium (Debian's, not Playwright's download)."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.3) -> Any:
    """Poll ``predicate`` until it returns something true; AssertionError after ``timeout``."""
    deadline = time.time() + timeout
    last_error: Exception | None = None
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 — elements come and go while Streamlit redraws
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} ({last_error})")


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot in test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_as(page: Any, url: str, who: str) -> None:
    """Open the app and give the participant's name on the first-visit form."""
    page.goto(url)
    box = page.get_by_label("Your name")
    box.wait_for(state="visible", timeout=60_000)
    box.fill(who)
    page.get_by_role("button", name="Continue").click()
    train_button(page).wait_for(state="visible", timeout=60_000)
    wait_until(lambda: url_param(page, "who") == who, 20, "the name in the URL")


def train_button(page: Any) -> Any:
    return page.get_by_test_id("stSidebar").get_by_role("button", name=re.compile("Train$"))


def set_seconds(page: Any, seconds: int) -> None:
    """The time budget slider (10 to 1800 s in steps of 10), set with the keyboard."""
    slider = page.get_by_test_id("stSidebar").get_by_test_id("stSlider").filter(
        has_text="Seconds").get_by_role("slider")
    slider.focus()
    slider.press("Home")
    for _ in range((seconds - 10) // 10):
        slider.press("ArrowRight")
    wait_until(lambda: slider.input_value() == str(seconds), 10,
               f"the budget at {seconds} s")
    page.wait_for_timeout(500)  # the slider sends its value when the keys stop


def url_param(page: Any, name: str) -> str | None:
    """A query parameter of the page's URL as the browser has it now (``page.url`` follows
    history changes only while Playwright processes events)."""
    values = parse_qs(page.evaluate("document.location.search").lstrip("?")).get(name)
    return values[0] if values else None


def picker(page: Any, label: str = "Run") -> Any:
    return page.get_by_test_id("stMainBlockContainer").get_by_role(
        "combobox", name=label, exact=True)


def picker_text(page: Any, label: str = "Run") -> str:
    """What the run picker labelled ``label`` shows (the run on screen's label)."""
    return picker(page, label).input_value(timeout=5_000)


def pick(page: Any, run_label_part: str | re.Pattern, label: str = "Run",
         timeout: float = 30) -> None:
    """Open the picker and choose the first run whose label contains (or matches)
    ``run_label_part``, opening it again until that run is listed (the page redraws its
    picker when runs are made, which closes an open list)."""
    def chosen() -> bool:
        picker(page, label).click()
        try:
            page.get_by_role("option").filter(has_text=run_label_part).first.click(timeout=3_000)
        except Exception:
            page.keyboard.press("Escape")
            raise
        return True

    wait_until(chosen, timeout, f"a run {run_label_part!r} in the picker", interval=1.0)


def status_on_screen(page: Any) -> str:
    """The status at the end of the picker's label (``… · running``)."""
    return picker_text(page).rsplit("·", 1)[-1].strip()


def main_button(page: Any, name: str) -> Any:
    return page.get_by_test_id("stMainBlockContainer").get_by_role(
        "button", name=re.compile(f"{name}$"))


#: for each Train button in the sidebar: whether it shows, and its element's stale/retained marks
_TRAIN_BUTTON_STATES_JS = """() => [...document.querySelectorAll('[data-testid=stSidebar] button')]
  .filter(b => /Train$/.test(b.textContent))
  .map(b => { const e = b.closest('[data-testid=stElementContainer]');
              return {shown: b.offsetParent !== null, stale: e?.dataset.stale,
                      retained: e?.dataset.retained ?? null}; })"""


def start_run(page: Any, known: set[str], timeout: float = 60) -> str:
    """Press Train; returns the new run's id once the page is on it (the URL names it and the
    picker shows it). Meanwhile the sidebar never shows more than one Train button."""
    train_button(page).click()

    doubled = []  # the Train buttons' element states whenever the sidebar showed two or more

    def new_run() -> str | None:
        if train_button(page).count() > 1:
            doubled.append(page.evaluate(_TRAIN_BUTTON_STATES_JS))
        run = url_param(page, "run")
        return run if run and run not in known else None

    run_id = wait_until(new_run, timeout, "the new run in the URL", interval=0.1)
    assert not doubled, f"two Train buttons on screen after one press: {doubled[0]}"
    wait_until(lambda: status_on_screen(page) in ("queued", "loading", "running"), timeout,
               "the new run in the picker")
    return run_id


def metric(page: Any, label: str) -> str:
    """The value of the st.metric whose label is ``label``."""
    box = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").filter(has_text=re.compile(f"^{label}$")))
    return box.get_by_test_id("stMetricValue").first.inner_text()


def step_on_screen(page: Any) -> int:
    text = metric(page, "Step").replace(",", "")
    return int(text) if text.isdigit() else 0


def open_run(page: Any, url: str, who: str, run_id: str) -> None:
    """Open a run by its link (``?who=…&run=…``), as a bookmark or a shared link would."""
    page.goto(f"{url}/?who={who}&run={run_id}")
    wait_until(lambda: url_param(page, "run") == run_id and picker_text(page), 60,
               "the run from its link")


#: the screen position of the map's point nearest the middle of its axes (never under the mode bar)
_CENTRE_POINT_JS = """g => {
    const d = g._fullData[0], xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis;
    const box = g.getBoundingClientRect();
    const cx = (xa.range[0] + xa.range[1]) / 2, cy = (ya.range[0] + ya.range[1]) / 2;
    let best = 0, bd = Infinity;
    for (let i = 0; i < d.x.length; i++) {
        const dd = (d.x[i] - cx) ** 2 + (d.y[i] - cy) ** 2;
        if (dd < bd) { bd = dd; best = i; }
    }
    return [box.left + xa._offset + xa.d2p(d.x[best]), box.top + ya._offset + ya.d2p(d.y[best])];
}"""


def centre_point(graph: Any) -> tuple[float, float]:
    """Where on the page the plotly map ``graph`` draws its point nearest the middle."""
    x, y = graph.evaluate(_CENTRE_POINT_JS)
    return x, y
