"""The studio's ablation sweep (queued runs, a table and heatmap filling in as they finish,
each cell a link to its run) and its export of a pipeline (preset JSON, torchvision and kornia
code; a preset JSON can be brought back in)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app import clicks, participants, studio_charts
from app.state import dataset, registry
from engine.augment import resolve_views
from engine.augment.export import kornia_code, preset_json, read_preset_json, torchvision_code
from engine.train.loop import channel_stats
from engine.train.sweep import CPU_BUDGET_SECONDS, MODES, Sweep, feed, plan, sweep_ops

IMPORTED = "studio_imported"  # the preset brought back in: {"title", ..., "views"}
MODE_NAMES = {"leave_one_out": "leave one op out", "pairs": "pairs of ops (SimCLR fig. 5)"}


@st.cache_resource(show_spinner=False)
def _feeders() -> dict[str, Any]:
    """Sweep id -> the thread that submits its remaining cells (one per sweep, process-wide)."""
    return {}


def _keep_feeding(sweep: Sweep) -> None:
    """Start the sweep's feeder when cells wait and none runs (a restarted server): only for
    the participant who owns the sweep, whose queue the cells go to."""
    feeders = _feeders()
    thread = feeders.get(sweep.id)
    if sweep.pending() and sweep.owner == participants.name() and not (
            thread is not None and thread.is_alive()):
        feeders[sweep.id] = feed(sweep, registry(), participants.actor())


def _link(run_id: str) -> str:
    who = participants.name()
    return f"explore?run={run_id}" + (f"&who={who}" if who else "")


def _start(run_id: str) -> None:
    base = registry().run(run_id).config()
    applied = sweep_ops(base)
    if len(applied) < 2:
        st.info("This run applies fewer than two augmentation ops: there is nothing to sweep.")
        return
    cols = st.columns([2, 3, 1])
    mode = cols[0].radio("Sweep", MODES, key="sweep_mode", format_func=MODE_NAMES.get)
    ops = cols[1].multiselect("Ops to vary", applied, default=applied, key="sweep_ops")
    budget = cols[2].number_input("Seconds a run", 5.0, 3600.0, CPU_BUDGET_SECONDS, 5.0,
                                  key="sweep_budget",
                                  help="Every run gets the same time budget and the base's seed.")
    try:
        cells = plan(base, mode, ops)
    except ValueError as exc:
        st.info(str(exc))
        return
    st.caption(f"{len(cells)} runs of {budget:g} s each from this run's settings (seed "
               f"{base.seed}): about {len(cells) * (budget + 20) / 60:.0f} minutes one at a "
               "time. They wait in the queue like any run.")
    clicks.button(st, "Queue the sweep", "sweep_go", icon=":material/playlist_add:")
    if clicks.take("sweep_go"):
        sweep = Sweep.new(base, mode, ops, budget, owner=participants.name())
        sweep.save(registry().store.root)
        _feeders()[sweep.id] = feed(sweep, registry(), participants.actor())
        st.session_state["sweep_id"] = sweep.id
        st.rerun()


def _table(sweep: Sweep) -> list[dict[str, Any]]:
    """The sweep's table (and its grid of pairs); returns its rows."""
    rows = sweep.table(registry().store)
    frame = pd.DataFrame([{
        "cell": r["label"], "kNN top-1": r["knn"], "status": r["status"],
        "run": _link(r["run_id"]) if r["run_id"] else None,
        "note": r["error"],
    } for r in rows])
    if sweep.mode == "leave_one_out" and rows[0]["knn"] is not None:
        frame["change"] = [None if r["knn"] is None else r["knn"] - rows[0]["knn"] for r in rows]
    st.dataframe(frame, hide_index=True, key=f"sweep_table_{sweep.id}",
                 column_config={"run": st.column_config.LinkColumn(
                     "run", display_text=r"explore\?run=([^&]+)"),
                     "kNN top-1": st.column_config.NumberColumn(format="%.3f"),
                     "change": st.column_config.NumberColumn(format="%+.3f")})
    if sweep.mode == "pairs":
        st.plotly_chart(studio_charts.pair_grid(rows), key=f"sweep_grid_{sweep.id}")
    finished = sum(r["status"] == "finished" for r in rows)
    st.caption(f"{finished} of {len(rows)} runs finished; the table fills in as they do.")
    return rows


def sweep_section(run_id: str) -> None:
    st.markdown("**Ablation sweep**: short runs from this run's settings that each switch ops "
                "off, with the same seed and budget, ranked by kNN.")
    _start(run_id)
    ids = Sweep.list(registry().store.root)
    if not ids:
        return
    current = st.session_state.get("sweep_id")
    chosen = st.selectbox("Sweep", ids, index=ids.index(current) if current in ids else 0,
                          key="sweep_pick")
    sweep = Sweep.load(registry().store.root, chosen)
    _keep_feeding(sweep)

    polls = not sweep.done(registry().store)

    def live() -> None:
        # read again each time: the feeder writes the cells' run ids as it submits them
        now = Sweep.load(registry().store.root, chosen)
        if now.done(registry().store, _table(now)):
            if polls:  # redraw the page once, so that it stops polling
                st.rerun(scope="app")
            st.caption("All runs of this sweep have ended.")

    st.fragment(live, run_every=3.0 if polls else None)()


# -- export ----------------------------------------------------------------------------------
def _imported() -> dict[str, Any] | None:
    upload = st.file_uploader("Bring a preset JSON back in", type=["json"], key="studio_import")
    if upload is None:
        st.session_state.pop(IMPORTED, None)
        return None
    try:
        info = read_preset_json(upload.getvalue())
    except ValueError as exc:
        st.error(f"{upload.name}: {exc}")
        return None
    st.success(f"{upload.name}: {info['title'] or 'a preset'} with {len(info['views'])} "
               "view(s), every op checked. The exports below are of it, and the view cloud "
               "can draw its views.")
    st.session_state[IMPORTED] = info
    return info


def export_section(run_id: str) -> None:
    st.markdown("**Take the pipeline home**: as a preset file (the app reads it back) or as "
                "Python for torchvision.transforms.v2 or kornia. Lines marked `NOT EXACT` say "
                "where the library has no exact equivalent (engine/augment/export_table.py).")
    cfg = registry().run(run_id).config()
    info = _imported()
    views = info["views"] if info else resolve_views(cfg.augment)
    title = info["title"] if info else (cfg.augment.preset or "run pipeline")
    try:
        ds = dataset(cfg.data)
        size, channels = ds.image_size, ds.channels
        mean, std = channel_stats(ds.train.images)
    except Exception:  # noqa: BLE001 — the code is still right, only less specific
        size, channels, mean, std = cfg.data.image_size, 3, None, None
    mean = [round(m, 4) for m in mean] if mean else None
    std = [round(s, 4) for s in std] if std else None
    files = {
        "preset JSON": ("preset.json", preset_json(views, title), "application/json"),
        "torchvision": ("augment_torchvision.py",
                        torchvision_code(views, size, title, mean, std, channels), "text/x-python"),
        "kornia": ("augment_kornia.py", kornia_code(views, size, title, mean, std, channels),
                   "text/x-python"),
    }
    cols = st.columns(len(files))
    for col, (name, (fname, text, mime)) in zip(cols, files.items(), strict=True):
        col.download_button(f"Download {name}", text, file_name=fname, mime=mime,
                            key=f"studio_dl_{name}", icon=":material/download:",
                            on_click="ignore")
    shown = st.radio("Show", list(files), horizontal=True, key="studio_export_show")
    st.code(files[shown][1], language="json" if shown == "preset JSON" else "python")
