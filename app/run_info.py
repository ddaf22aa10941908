"""What the pages say about a run: its label, a picker over all runs, one table row."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from app.state import registry
from engine.train.store import RunDir

#: statuses of a run that is still going (the UI polls only for these)
ACTIVE = ("running", "loading", "paused")
#: a run of another process (the CLI) counts as running while its log grew this recently
OTHER_PROCESS_SECONDS = 30.0


def run_status(run_id: str) -> str:
    """The registry's status, except that a run trained by another process (the CLI, another
    app) whose event log is still growing is ``running``, not ``interrupted``."""
    status = registry().status(run_id)
    if status == "interrupted":
        try:
            mtime = (registry().run(run_id).path / "metrics.jsonl").stat().st_mtime
        except (OSError, ValueError):
            return status
        if time.time() - mtime < OTHER_PROCESS_SECONDS:
            return "running"
    return status


def created(run: RunDir) -> float:
    s = run.summary()
    if "created" in s:
        return float(s["created"])
    try:
        return (run.path / "config.json").stat().st_mtime
    except OSError:
        return 0.0


def when(t: float) -> str:
    return time.strftime("%d %b %H:%M", time.localtime(t)) if t else "?"


def label(run: RunDir, with_status: bool = True) -> str:
    """``simclr · shapes · 23 Nov 14:02 · finished`` (the config's own name when it has one)."""
    try:
        cfg = run.config()
        name = cfg.name or f"{cfg.method.name} · {cfg.data.name}"
    except Exception:  # noqa: BLE001 — a damaged run still gets a line in the list
        name = run.id
    status = f" · {run_status(run.id)}" if with_status else ""
    return f"{name} · {when(created(run))}{status}"


def row(run: RunDir) -> dict[str, Any]:
    """One line of the runs table."""
    s = run.summary()
    try:
        cfg = run.config()
        method, data, backbone = cfg.method.name, cfg.data.name, cfg.model.backbone
        name = cfg.name
    except Exception:  # noqa: BLE001
        method = data = backbone = name = "?"
    attrs = {k[4:]: v for k, v in s.items() if k.startswith("knn_") and k not in (
        "knn_top1", "knn_top1_z")}
    return {
        "run": run.id,
        "status": run_status(run.id),
        "method": method,
        "data": data,
        "backbone": backbone,
        "name": name,
        "kNN top-1": s.get("knn_top1"),
        "linear probe": s.get("linear_top1"),
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
    need_snapshots: bool = False,
    help: str | None = None,
) -> str | None:
    """A select box over every run (newest first); returns the chosen id."""
    runs = registry().runs()
    if need_snapshots:
        runs = [r for r in runs if r.snapshots()]
    if not runs:
        return None
    ids = [r.id for r in runs]
    labels = {r.id: label(r) for r in runs}
    index = ids.index(current) if current in ids else 0
    # A stale widget value (run deleted) would make Streamlit complain; reset it.
    if st.session_state.get(key) not in (None, *ids):
        del st.session_state[key]
    return st.selectbox(label_text, ids, index=index, key=key, help=help,
                        format_func=lambda i: labels.get(i, i))
