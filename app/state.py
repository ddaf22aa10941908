"""Process-wide resources (run registry, data sets, map cache) and the selected run in the URL.

Everything here is shared by every browser session of the process (``st.cache_resource``); a
session keeps only run ids, and mirrors the selected run in ``st.query_params`` so a reload or a
shared link finds it again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import streamlit as st

from app.load_toast import load_toast
from engine.config import DataConfig
from engine.data import Dataset, load_dataset
from engine.eval.maps import MapCache, MapKey
from engine.train.process import make_process_runner
from engine.train.registry import RunRegistry
from engine.train.runner import install_shutdown
from engine.train.store import RunDir, RunStore

log = logging.getLogger(__name__)

#: data sets that load offline in a second or two; others load only when the user asks
QUICK_DATASETS = ("shapes", "digits")


def runs_root() -> str:
    return str(Path(os.environ.get("SSL_STUDIO_RUNS", "runs")).resolve())


@st.cache_resource(show_spinner=False)
def _registry(root: str) -> RunRegistry:
    """Made once per process: runs an earlier server left behind as queued or running are
    marked ``interrupted`` (resumable from their checkpoint), and the server's exit (SIGTERM,
    Ctrl+C, a normal shutdown) stops the live runs with a final checkpoint."""
    store = RunStore(root)
    store.reconcile()
    registry = RunRegistry(store, runner_factory=make_process_runner)
    install_shutdown(registry.stop_all)
    return registry


def registry() -> RunRegistry:
    """The one registry of this process (per runs directory)."""
    return _registry(runs_root())


def _maps_folder(key: MapKey) -> Path | None:
    """Where the UMAPs of a run's snapshots are kept: ``<run>/maps/`` (None for no such run)."""
    try:  # not registry(): the map worker's thread asks too
        run = RunStore(runs_root()).path_of(key.run_id)
    except ValueError:
        return None
    return run / "maps" if (run / "config.json").is_file() else None


@st.cache_resource(show_spinner=False)
def map_cache() -> MapCache:
    """The one map cache of this process; UMAP's compilation starts in the background
    (``SSL_STUDIO_UMAP_WARMUP=0`` skips that, e.g. in tests that draw only PCA maps). Each
    UMAP is kept in its run's directory and read back after a restart."""
    cache = MapCache(folder=_maps_folder)
    if os.environ.get("SSL_STUDIO_UMAP_WARMUP", "1") != "0":
        # pandas is imported here, before the warm-up thread imports it: a page's first chart
        # importing it at the same time got a half-initialised module
        import pandas  # noqa: F401

        cache.warm_up()
    return cache


@st.cache_resource(max_entries=6, show_spinner=False)
def _dataset(key: str) -> Dataset:
    ds = load_dataset(DataConfig(**json.loads(key)))
    try:
        return ds.share_memory()  # before pages read it: a run started with it moves nothing
    except RuntimeError as exc:  # /dev/shm too small: a run started with it will say so
        log.warning("could not share the data set %s: %s", ds.name, exc)
        return ds


_LOADED: set[str] = set()  # keys this process has loaded (later calls hit the cache)


def dataset(cfg: DataConfig) -> Dataset:
    """The data set of ``cfg``, loaded once per process (raises the engine's readable errors);
    a first load that takes a while says how far it is in a toast."""
    key = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
    if key in _LOADED:
        return _dataset(key)
    with load_toast(cfg.root or cfg.name):
        ds = _dataset(key)
    _LOADED.add(key)
    return ds


def dataset_is_quick(cfg: DataConfig) -> bool:
    """Whether loading ``cfg`` is cheap enough to do while drawing a page."""
    if cfg.name in QUICK_DATASETS or cfg.name == "folder":
        return True
    try:
        from engine.data.loading import cache_path

        return cache_path(cfg).exists()
    except Exception:  # noqa: BLE001 — an unknown layout only means "ask first"
        return False


# -- the selected run -----------------------------------------------------------------------
def run_dir(run_id: str | None) -> RunDir | None:
    """The run's directory, or None when there is no such run (deleted, bad id)."""
    if not run_id:
        return None
    try:
        return registry().run(run_id)
    except (FileNotFoundError, ValueError):
        return None


def selected_run(param: str = "run") -> str | None:
    """The selected run id: this session's choice, else the URL's (a reload or a shared link),
    and written back to the URL either way.

    The session comes first because a URL change made just before ``st.rerun()`` does not
    survive the rerun; page switches also clear the URL, and the session puts it back.
    """
    key = f"selected_{param}"
    run_id = st.session_state.get(key)
    if not (run_id and run_dir(run_id) is not None):
        run_id = st.query_params.get(param)
        if not (run_id and run_dir(run_id) is not None):
            st.session_state.pop(key, None)
            if param in st.query_params:
                del st.query_params[param]
            return None
        st.session_state[key] = run_id
    st.query_params[param] = run_id  # also when unchanged: the browser may not have it yet
    return run_id


def select_run(run_id: str | None, param: str = "run") -> None:
    """Make ``run_id`` the session's selected run (None: none) and name it in the URL; since a
    URL change made just before ``st.rerun()`` is lost, ``selected_run`` names it again."""
    key = f"selected_{param}"
    if run_id:
        st.session_state[key] = run_id
        st.query_params[param] = run_id
    else:
        st.session_state.pop(key, None)
        if param in st.query_params:
            del st.query_params[param]


# -- widget values set from a fragment ---------------------------------------------------------
_LATER = "widget_values_later"


def set_later(key: str, value: object) -> None:
    """Give widget ``key`` the value ``value`` at the page's next full run. From a fragment's
    run a widget's value cannot be set directly: the browser's value overwrites it at the next
    full run. :func:`apply_later` sets it before the widget is drawn."""
    st.session_state.setdefault(_LATER, {})[key] = value


def apply_later(key: str) -> None:
    """Set widget ``key`` to the value :func:`set_later` kept for it, if any; call before the
    widget is drawn."""
    later = st.session_state.get(_LATER, {})
    if key in later:
        st.session_state[key] = later.pop(key)
