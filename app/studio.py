"""The augmentation studio on the Explore page: what each augmentation does to a run's
representation (invariance profile, view cloud on the map), which ops matter (ablation sweep,
``app.studio_sweep``) and the pipeline to take home (export). The engine computes
(``engine.eval.invariance``, ``engine.eval.view_cloud``, ``engine.train.sweep``); this draws."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import streamlit as st

from app import charts, images, mapview, studio_charts, studio_sweep
from app.run_info import label, labels
from app.state import apply_later, dataset, registry, run_dir, set_later
from engine.augment import OPS
from engine.eval.encoder import RunEncoder
from engine.eval.invariance import run_strength
from engine.eval.profile_jobs import ProfileJobs
from engine.eval.view_cloud import ViewCloud, view_cloud

NONE = "(none)"
IMPORTED = "the imported preset"
LEVELS = ("run", "weaker", "stronger")
PENDING = ("queued", "computing")  # a profile job that has not ended
PICK_POLL_S = 2.0  # how often the view cloud looks for an image picked on the map


def profile_jobs() -> ProfileJobs:
    """The process's profile worker for the sizes set now (``SSL_STUDIO_PROFILE_QUERIES``
    test images, twice as many bank images; tests make it small)."""
    return _profile_jobs(int(os.environ.get("SSL_STUDIO_PROFILE_QUERIES", "500")))


@st.cache_resource(show_spinner=False)
def _profile_jobs(n_query: int) -> ProfileJobs:
    return ProfileJobs(n_bank=2 * n_query, n_query=n_query)


@st.cache_resource(max_entries=4, show_spinner=False)
def _encoder(run_id: str, mtime: int) -> RunEncoder:
    run = registry().run(run_id)
    return RunEncoder.from_run(run, dataset(run.config().data))


def encoder(run_id: str) -> RunEncoder | None:
    """The run's encoder at its last checkpoint (cached per checkpoint file), or None (no
    checkpoint, or its data set is not on this machine: an imported run)."""
    path = registry().run(run_id).checkpoint_path()
    if path is None:
        return None
    try:
        return _encoder(run_id, path.stat().st_mtime_ns)
    except (ValueError, OSError):  # DataError is a ValueError
        return None


@st.cache_resource(max_entries=8, show_spinner=False)
def _bank(run_id: str, step: int, mtime: int) -> np.ndarray:
    """The snapshot's images embedded by the checkpoint's encoder (the views' neighbours)."""
    return _encoder(run_id, mtime).embed(mapview.load(run_id, step).thumbs)


# -- the invariance profile ----------------------------------------------------------------------
def _profile_or_button(run_id: str, key: str) -> dict[str, Any] | str:
    """The run's cached profile, or a button that computes it (and a progress line while it
    computes). Without a profile, returns the job's state as drawn (``queued``, ``computing``,
    ``failed``, ``idle``), or ``none`` without a checkpoint."""
    run = registry().run(run_id)
    if run.checkpoint_path() is None:
        st.caption(f"{label(run, False)}: no checkpoint yet, so no profile.")
        return "none"
    jobs = profile_jobs()
    done = jobs.cached(run)
    if done is not None:
        return done
    state = jobs.status(run_id)
    if state in PENDING:
        st.progress(jobs.progress(run_id), text=f"Computing the profile of "
                    f"{label(run, False)} in the background ({state})…")
        return state
    if state == "failed":
        st.warning(f"The profile failed: {jobs.error(run_id)}")
    if st.button("Compute the invariance profile", key=key, icon=":material/insights:",
                 help="Every op of the library alone, at the run's strength, weaker and "
                 "stronger, on test images: cosine in h and kNN. Runs in the background."):
        jobs.request(run)
        st.rerun()
    return state


def profile_section(run_id: str) -> None:
    st.markdown("**Invariance profile**: each op applied alone to test images. A cosine near "
                "1 means the encoder ignores the op; kNN shows what the op costs in accuracy.")
    others = labels(r for r in registry().runs() if r.id != run_id and r.checkpoint_path())
    cols = st.columns([3, 1, 1])
    other = cols[0].selectbox("Overlay another run", [NONE, *others], key="studio_other",
                              format_func=lambda i: others.get(i, i))
    metric = cols[1].radio("Measure", list(studio_charts.METRICS), key="studio_metric",
                           format_func={"cosine": "cosine", "knn": "kNN"}.get)
    level = cols[2].radio("Strength", LEVELS, key="studio_level")
    profiles, drew_progress = {}, False
    for rid, key in ((run_id, "studio_profile_a"), (other, "studio_profile_b")):
        if rid == NONE:
            continue
        profile = _profile_or_button(rid, key)
        if isinstance(profile, dict):
            profiles[f"{label(run_dir(rid), False)} (step {profile['step']})"] = profile
        drew_progress |= profile in PENDING
    # also when the job ended since its progress line was drawn: the page must not keep it
    if drew_progress or profile_jobs().busy():
        def poll() -> None:
            if not profile_jobs().busy():
                st.rerun(scope="app")

        st.fragment(poll, run_every=1.0)()
    if metric == "knn" and any(p["clean_knn"] is None for p in profiles.values()):
        st.info("This data set has no labels: kNN cannot be measured, only cosine.")
        metric = "cosine"
    if profiles:
        st.plotly_chart(studio_charts.profile_bars(profiles, metric, level),
                        key="studio_profile_chart")
        first = next(iter(profiles.values()))
        st.caption(f"{first['n_query']} test images against a bank of {first['n_bank']} train "
                   f"images; computed in {first['seconds']:.0f} s. Weaker and stronger: half and "
                   "1.5 times each op's strength (engine/augment/strength.py).")


# -- the view cloud ------------------------------------------------------------------------------
def clicked_row(snap: mapview.Snapshot) -> int | None:
    """The image clicked (or first lassoed) on this snapshot's Explore map, else the Explore
    page's random pick, else None."""
    prefix = f"explore_map_{snap.run_id}_{snap.step}_"
    for key in [k for k in st.session_state if str(k).startswith(prefix)]:
        rows = charts.selected_rows(st.session_state[key])
        if rows and rows[0] < snap.n:
            return rows[0]
    query = st.session_state.get("explore_query")
    return query if isinstance(query, int) and query < snap.n else None


def _offer_pick(snap: mapview.Snapshot) -> None:
    """Offer the image picked on the map for the view cloud. A click on the map (or Random
    image) redraws only the map's fragment, so this small fragment looks again every
    :data:`PICK_POLL_S` seconds; taking the offer redraws the page with that row."""
    def offer() -> None:
        picked = clicked_row(snap)
        shown = st.session_state.get("studio_row")
        if picked is not None and shown is not None and picked != shown and st.button(
                f"Use the image picked on the map (row {picked}, "
                f"{snap.describe_row(picked)})", key="studio_use_pick",
                icon=":material/ads_click:"):
            set_later("studio_row", picked)
            st.rerun(scope="app")

    st.fragment(offer, run_every=PICK_POLL_S)()


def _cloud_controls(snap: mapview.Snapshot, enc: RunEncoder) -> tuple[int, list, int, str]:
    apply_later("studio_row")  # the row lives in session state alone (no value= below)
    if not 0 <= st.session_state.get("studio_row", -1) < snap.n:
        st.session_state["studio_row"] = min(clicked_row(snap) or 0, snap.n - 1)
    _offer_pick(snap)
    cols = st.columns([1, 2, 2, 1])
    row = int(cols[0].number_input("Image (map row)", 0, snap.n - 1, key="studio_row"))
    imported = st.session_state.get(studio_sweep.IMPORTED)
    choices = ["the run's pipeline", *([IMPORTED] if imported else []), *sorted(OPS)]
    source = cols[1].selectbox("Views from", choices, key="studio_source",
                               help="The run's own views, a preset brought back in on the "
                               "Export tab, or one op alone (p = 1) at the run's strength (the "
                               "op's default when the run does not use it).")
    n = int(cols[2].slider("Views", 4, 64, 24, key="studio_n"))
    kind = cols[3].radio("Map", list(mapview.MAP_KINDS), key="studio_kind",
                         format_func=mapview.MAP_KINDS.get)
    if source == "the run's pipeline":
        views = enc.views
    elif source == IMPORTED:
        views = imported["views"]
    else:
        used = run_strength(enc.views, source)
        views = [[{**(used or {"op": source}), "p": 1.0}]]
    return row, views, n, kind


def _draw_cloud(snap: mapview.Snapshot, cloud: ViewCloud, row: int, xy: np.ndarray,
                shown: str) -> None:
    codes, names = snap.codes("class")
    st.plotly_chart(studio_charts.view_cloud_map(xy, codes, names, row, cloud.xy, cloud.cosine),
                    key="studio_cloud_chart")
    cols = st.columns(3)
    cols[0].metric("Mean cosine, view to source", f"{cloud.mean_cosine:.3f}")
    cols[1].metric("Mean cosine, source to its class",
                   "n/a" if np.isnan(cloud.class_cosine) else f"{cloud.class_cosine:.3f}")
    cols[2].metric("Lowest view cosine", f"{float(cloud.cosine.min()):.3f}")
    st.caption(f"View cloud of image #{int(snap.arrays['index'][row])} on the "
               f"{mapview.MAP_KINDS[shown]} map of step {snap.step}. Views are placed by their "
               "neighbours' positions: the inverse cosine-distance weighted mean of the 5 "
               "nearest map images in h (the map's projection is not refitted). Views closer to "
               "their source than its class is to it: the encoder ignores these augmentations.")
    st.image(images.grid(cloud.views[:16], columns=16, size=56), caption="the first views")


def view_cloud_section(snap: mapview.Snapshot) -> None:
    st.markdown("**View cloud**: augmented views of one image, embedded by the run's encoder "
                "and placed on the map, joined to their source.")
    if snap.thumbs is None:
        st.info("The images of this run cannot be loaded, so no views can be made.")
        return
    enc = encoder(snap.run_id)
    if enc is None:
        st.info("This run has no checkpoint yet (written at the end and every 2 minutes), "
                "or its data set is not on this machine (an imported run).")
        return
    row, views, n, kind = _cloud_controls(snap, enc)
    if st.button("Draw the view cloud", key="studio_cloud_go", icon=":material/scatter_plot:"):
        path = registry().run(snap.run_id).checkpoint_path()
        bank = _bank(snap.run_id, snap.step, path.stat().st_mtime_ns)
        xy, shown = mapview.coords(snap, "h", kind)
        labels = snap.labels
        same = np.flatnonzero((labels == labels[row]) & (np.arange(snap.n) != row))[:64]
        cloud = view_cloud(enc, snap.thumbs[row], views, n=n, seed=row,
                           same_class=snap.thumbs[same] if labels[row] >= 0 else None,
                           bank_h=bank, bank_xy=xy)
        st.session_state["studio_cloud"] = (snap.run_id, snap.step, row, cloud, xy, shown)
    saved = st.session_state.get("studio_cloud")
    if saved and saved[:2] == (snap.run_id, snap.step):
        _draw_cloud(snap, saved[3], saved[2], saved[4], saved[5])


def section(snap: mapview.Snapshot) -> None:
    """The studio for the run and snapshot shown on the Explore page."""
    st.divider()
    st.header("Augmentation studio")
    # A keyed tab set keeps its tab through reruns (an upload, a finished profile), and only
    # the open tab is drawn (its work done), not all four at every rerun.
    parts = {"Invariance profile": lambda: profile_section(snap.run_id),
             "View cloud": lambda: view_cloud_section(snap),
             "Ablation sweep": lambda: studio_sweep.sweep_section(snap.run_id),
             "Export": lambda: studio_sweep.export_section(snap.run_id)}
    tabs = st.tabs(list(parts), key="studio_tab", on_change="rerun")
    for tab, draw in zip(tabs, parts.values(), strict=True):
        if tab.open:
            with tab:
                draw()
