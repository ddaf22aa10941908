"""Browser tests: each test's report is kept on its item so fixtures can screenshot failures;
a browser per module, a fresh context (a participant's own browser) per call of ``visit``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import ui


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ARG001
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not Path(ui.CHROMIUM).exists():
        pytest.skip(f"browser tests need chromium at {ui.CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="browser tests need the playwright package")
    with sync_api.sync_playwright() as pw:
        browser = ui.launch(pw)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def visit(chromium, request):
    """``visit(url, who)``: a new browser context opened on the app as participant ``who``;
    every page it made is screenshot into test-artifacts/ when the test fails."""
    contexts = []

    def open_page(url: str, who: str):
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append((who, context))
        page = context.new_page()
        page.set_default_timeout(30_000)
        ui.open_as(page, url, who)
        return page

    yield open_page
    failed = getattr(request.node, "rep_call", None)
    for who, context in contexts:
        if failed is not None and failed.failed:
            for i, page in enumerate(context.pages):
                with contextlib.suppress(Exception):
                    ui.shot(page, f"{request.node.name}-{who}-{i}")
        context.close()
