"""While a data set loads for the first time in this process (a large image folder can take
minutes), a toast says how far it is, whichever page or tab the person looks at.

The loader tells its progress (``engine.data.progress``) inside a cached function, which may
not draw on the page itself: its drawing would be replayed on every later call. A watcher
thread with this session's context draws the toast instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from engine.data import progress

POLL_S = 0.25


@contextmanager
def load_toast(name: str) -> Iterator[None]:
    """Within the block, the loading of data set ``name`` is shown in a toast once it has
    taken a second (nothing outside a page's script run)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None:
        yield
        return
    said = {"text": ""}
    toast: dict[str, Any] = {}
    stop = threading.Event()

    def show() -> None:
        shown = ""
        while not stop.wait(POLL_S):
            text = said["text"]
            if text and text != shown:
                shown = text
                body = f"Loading {name}: {text}"
                if "toast" in toast:  # until the last word: a phase may outlast a short toast
                    toast["toast"].toast(body, icon=":material/hourglass_top:",
                                         duration="infinite")
                else:
                    toast["toast"] = st.toast(body, icon=":material/hourglass_top:",
                                              duration="infinite")

    watcher = threading.Thread(target=show, name="load-toast", daemon=True)
    add_script_run_ctx(watcher, ctx)
    watcher.start()
    loaded = False
    try:
        with progress.reporting(lambda message: said.__setitem__("text", message)):
            yield
        loaded = True
    finally:
        stop.set()
        watcher.join()
        # the last word, and the toast goes; a failure is the page's to say
        done = (f"Loaded {name}", ":material/check_circle:") if loaded else (
            f"Could not load {name}", ":material/error:")
        if "toast" in toast:
            toast["toast"].toast(done[0], icon=done[1])
        elif said["text"]:  # it spoke, though too briefly for the watcher to show it
            st.toast(done[0], icon=done[1])
