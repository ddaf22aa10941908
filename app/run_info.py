"""What the pages say about a run: its label, a picker over the runs, one table row."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app.state import registry
from engine.train.store import RunDir

#: statuses of a run that is still going (the UI polls only for these)
ACTIVE = ("queued", "loading", "running", "paused")


#: the runs folder's stamp when this session last listed the runs, and when
LISTED = "_runs_listed"
#: a page whose live panel polls redraws its run picker when runs were made or deleted since
#: it was listed, at most this often (a room of pages redrawing at every new run loads a server)
LIST_REFRESH_S = 10.0
#: a run picker lists this many runs, the newest (and the one shown, however old); the Runs
#: page lists them all. Every page holds its picker's labels: a room of pages over a workshop's
#: hundreds of runs would hold runs x pages of them.
PICKER_RUNS = 100


def list_outdated() -> bool:
    """Whether this session's run picker was drawn LIST_REFRESH_S or more ago and runs were
    made or deleted since (by anyone: a participant, another tab, the CLI)."""
    listed = st.session_state.get(LISTED)
    if listed is None:
        return False
    stamp, when = listed
    return time.time() - when >= LIST_REFRESH_S and registry().store.stamp() != stamp


#: each run's status as this full run of the page first read it (and so drew it)
DRAWN = "_statuses_drawn"


def forget_drawn_statuses() -> None:
    """At the start of each full run of a page: what the last run drew is redrawn now."""
    st.session_state[DRAWN] = {}


def run_status(run_id: str) -> str:
    """The registry's status: live runs from their runner or the queue, others from the run
    directory (which tells the truth: a run whose process died reads ``interrupted``). The
    first answer for each run in a run of the page is kept (:func:`drawn_status`)."""
    try:
        status = registry().status(run_id)
    except (FileNotFoundError, ValueError):
        status = "deleted"
    if get_script_run_ctx() is not None:
        st.session_state.setdefault(DRAWN, {}).setdefault(run_id, status)
    return status


def drawn_status(run_id: str) -> str | None:
    """The status this run of the page first read for ``run_id`` (None: not read yet). A page
    takes seconds to draw on a busy server and a run may change status meanwhile: what was
    drawn first (the picker's label, the buttons) shows this one, so the live panel compares
    the status it polls with this one to know when to redraw the page."""
    return st.session_state.get(DRAWN, {}).get(run_id)


def owner(run: RunDir) -> str:
    """Who started the run ("cli" for command-line runs; "?" for runs older than owners)."""
    return str(run.summary().get("owner") or "?")


def created(run: RunDir) -> float:
    s = run.summary()
    if "created" in s:
        return float(s["created"])
    try:
        return (run.path / "config.json").stat().st_mtime
    except OSError:
        return 0.0


def when(t: float) -> str:
    """``08:17:32`` today, ``05 Dec 08:17:32`` on another day."""
    if not t:
        return "?"
    same_day = time.strftime("%Y%m%d", time.localtime(t)) == time.strftime("%Y%m%d")
    return time.strftime("%H:%M:%S" if same_day else "%d %b %H:%M:%S", time.localtime(t))


def label(run: RunDir, with_status: bool = True) -> str:
    """``simclr · shapes · ada · 14:02:37 · finished`` (the config's own name when it has
    one): name, owner, start time to the second and status. Runs started in the same second
    can share it: a list of runs takes :func:`labels`."""
    try:
        cfg = run.config()
        name = cfg.name or f"{cfg.method.name} · {cfg.data.name}"
    except Exception:  # noqa: BLE001 — a damaged run still gets a line in the list
        name = run.id
    status = f" · {run_status(run.id)}" if with_status else ""
    return f"{name} · {owner(run)} · {when(created(run))}{status}"


def labels(runs: Iterable[RunDir]) -> dict[str, str]:
    """:func:`label` of each run, by run id, each one different: runs that name, owner and
    start second would not tell apart (Train pressed twice in one second) also show their id's
    last part, ``simclr · shapes · ada · 14:02:37 · 3f2a · finished``. A select box tells its
    options apart by these words: two runs with one label would be one option."""
    runs = list(runs)
    plain = {r.id: label(r, with_status=False) for r in runs}
    count = Counter(plain.values())
    return {r.id: plain[r.id] + (f" · {r.id.rsplit('-', 1)[-1]}" if count[plain[r.id]] > 1
                                 else "") + f" · {run_status(r.id)}" for r in runs}


def parent_id(init_from: str) -> str:
    """The run a run started from (``model.init_from``: a run id or a run directory), as a
    run id; "" for none."""
    return init_from.rstrip("/").rsplit("/", 1)[-1] if init_from else ""


def row(run: RunDir) -> dict[str, Any]:
    """One line of the runs table."""
    s = run.summary()
    try:
        cfg = run.config()
        method, data, backbone = cfg.method.name, cfg.data.name, cfg.model.backbone
        name, parent = cfg.name, parent_id(cfg.model.init_from)
    except Exception:  # noqa: BLE001
        method = data = backbone = name = parent = "?"
    attrs = {k[4:]: v for k, v in s.items() if k.startswith("knn_") and k not in (
        "knn_top1", "knn_top1_z")}
    return {
        "run": run.id,
        "status": run_status(run.id),
        "owner": s.get("owner") or "?",
        "method": method,
        "data": data,
        "backbone": backbone,
        "name": name,
        "kNN top-1": s.get("knn_top1"),
        "linear probe": s.get("linear_top1"),
        "classifier top-1": s.get("classifier_top1"),
        "parent": parent,
        **{f"kNN {k}": v for k, v in attrs.items()},
        "steps": s.get("steps"),
        "images/s": s.get("images_per_s"),
        "created": when(created(run)),
        "error": s.get("error", ""),
    }


def pick_run(
    label_text: str,
    current: str | None,
    key: str,
    on_pick: Callable[[str], None],
    need_snapshots: bool = False,
    only_owner: str | None = None,
    help: str | None = None,
) -> str | None:
    """A select box over the newest :data:`PICKER_RUNS` runs (newest first, and ``current``)
    showing ``current``; returns ``current`` when it is listed, else None. A pick calls
    ``on_pick(run_id)``.

    The caller's selection is the one source of truth; the box only shows it. Its key carries
    the selection and the listed labels, so each change of either makes a new box: a browser
    that still holds an older box's value (another run, an index into a shorter list) can never
    send it back as a choice. ``only_owner`` lists only that participant's runs (and
    ``current``).
    """
    st.session_state[LISTED] = (registry().store.stamp(), time.time())
    runs = []
    for run in registry().runs():
        if len(runs) >= PICKER_RUNS and run.id != current:
            continue
        if need_snapshots and not run.snapshots():
            continue
        if only_owner is None or run.id == current or owner(run) == only_owner:
            runs.append(run)
    if not runs:
        return None
    ids = [r.id for r in runs]
    names = labels(runs)
    shown = current if current in ids else None
    digest = hashlib.sha1("\n".join([str(shown), *ids, *names.values()]).encode())
    widget = f"{key}_{digest.hexdigest()[:12]}"

    def picked() -> None:
        value = st.session_state.get(widget)
        if value and value != shown and value in ids:
            on_pick(value)

    st.selectbox(label_text, ids, index=None if shown is None else ids.index(shown),
                 key=widget, help=help, format_func=lambda i: names.get(i, i),
                 placeholder="Choose a run", on_change=picked)
    return shown
