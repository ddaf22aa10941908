"""The server's heap, frozen once its modules are imported.

Streamlit collects all garbage after every script run (``runner.postScriptGC``), which keeps a
workshop server's memory in bounds. But the server holds torch, plotly, the engine and the app
(some 430,000 objects once imported), and a full collection walked them all: 0.25 s on a
2-core CPU, after every rerun of every participant's page. Under twenty participants those
collections held the interpreter in 83 % of the samples of a load run, and pages and the
health check waited (BENCHMARKS.md, "Workshop load"). Those objects live as long as the
process, so they are moved out of the collector's sight once (:func:`gc.freeze`): a full
collection then walks only what pages made since.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil

import streamlit as st

import app


@st.cache_resource(show_spinner=False)
def freeze_imports() -> int:
    """Import every module of the app (not the page scripts), collect, and freeze what is
    alive; once per process. Returns the number of objects frozen."""
    for module in pkgutil.iter_modules(app.__path__):
        if module.name != "pages":
            importlib.import_module(f"app.{module.name}")
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
