"""Explore: a run's embedding map; click or lasso images to see them and their nearest
neighbours in the full embedding space."""

from __future__ import annotations

from collections import Counter

import numpy as np
import streamlit as st

from app import charts, mapview, participants, selection_export, studio
from app.hover import hover_thumbnails
from app.run_info import ACTIVE, drawn_status, pick_run, run_status
from app.state import registry, run_dir, select_run, selected_run, set_later

MAX_SELECTED_SHOWN = 40


def controls(snap: mapview.Snapshot) -> tuple[str, str, str, int]:
    cols = st.columns([2, 2, 1, 2])
    kind = cols[0].radio("Map", list(mapview.MAP_KINDS), horizontal=True, key="explore_kind",
                         format_func=mapview.MAP_KINDS.get,
                         help="UMAP keeps neighbourhoods; PCA is the linear view, instant.")
    colourings = snap.colourings()
    colouring = cols[1].selectbox("Colour by", colourings, key="explore_colour",
                                  help="The class, or any extra attribute of the images.")
    feature = cols[2].radio("Feature", snap.features, horizontal=True, key="explore_feature",
                            help="h: backbone feature (what a downstream task uses); "
                            "z: the projection the loss sees.")
    k = cols[3].slider("Neighbours k", 1, 30, 10, key="explore_k")
    return kind, colouring, feature, k


def query_panel(snap: mapview.Snapshot, rows: list[int], feature: str, colouring: str,
                k: int) -> None:
    if not rows:
        st.info("**Click a point** on the map to see the image and its nearest neighbours, or "
                "**lasso** a group (toolbar, top right) to see its images. Neighbours are found "
                f"in the full {snap.arrays[feature].shape[1]}-dimensional space, not on the 2-D "
                "map.")
        return
    q = rows[0]
    codes, names = snap.codes(colouring)
    st.markdown(f"**Query** · {snap.describe_row(q)}")
    mapview.gallery(snap, [q], [mapview._name(names, codes[q])], size=160)
    sims, idx = mapview.neighbours(snap, feature, q, k)
    p = mapview.precision(snap, idx, q, colouring)
    head = f"**{len(idx)} nearest neighbours** (cosine similarity)"
    if p is not None:
        head += f" · precision@{len(idx)} for *{mapview._name(names, codes[q])}*: **{p:.2f}**"
    st.markdown(head)
    captions = [
        f"{'✓' if codes[j] == codes[q] else '✗'} {mapview._name(names, codes[j])} · {s:.3f}"
        for j, s in zip(idx, sims, strict=True)
    ]
    mapview.gallery(snap, idx.tolist(), captions, size=96, per_row=5)


def selection_panel(snap: mapview.Snapshot, rows: list[int], colouring: str) -> None:
    codes, names = snap.codes(colouring)
    counts = Counter(mapview._name(names, codes[r]) for r in rows)
    st.markdown(f"**{len(rows)} images selected** · "
                + ", ".join(f"{name} {n}" for name, n in counts.most_common()))
    shown = rows[:MAX_SELECTED_SHOWN]
    mapview.gallery(snap, shown, [mapview._name(names, codes[r]) for r in shown], size=72,
                    per_row=6)
    if len(rows) > len(shown):
        st.caption(f"(the first {len(shown)} shown)")
    selection_export.downloads(snap, rows)


def map_fragment(snap: mapview.Snapshot, xy: np.ndarray, shown: str, colouring: str,
                 feature: str, k: int) -> None:
    """The map and what is selected on it: a fragment, so a click redraws only this part.

    The figure never depends on the selection: Streamlit identifies a chart by its content, so
    a figure that changed with each click would lose the selection it reports."""
    codes, names = snap.codes(colouring)
    left, right = st.columns([3, 2], gap="large")
    with left:
        counts = np.bincount(codes[codes >= 0], minlength=len(names)).tolist()
        st.markdown(charts.legend_html(names, counts), unsafe_allow_html=True)
        map_id = mapview.map_id(snap, feature, shown)
        fig = mapview.map_figure(snap, feature, xy, shown, colouring, height=620)
        event = st.plotly_chart(
            fig, key=map_id,
            on_select="rerun", selection_mode=("points", "lasso"),
            config={"displayModeBar": True, "displaylogo": False,
                    "modeBarButtonsToRemove": ["toImage", "autoScale2d"]},
        )
        st.caption(f"{mapview.MAP_KINDS[shown]} of {snap.n} test images, feature {feature}, at "
                   f"step {snap.step}. Click a point to query it; to select a group, pick the "
                   "lasso in the chart's toolbar (top right) and draw. Double-click clears.")
    rows = charts.selected_rows(event)
    with right:
        if not rows:
            if st.button("Random image", icon=":material/casino:", key="explore_random"):
                st.session_state["explore_query"] = int(np.random.default_rng().integers(snap.n))
            q = st.session_state.get("explore_query")
            rows = [q] if q is not None and q < snap.n else []
        query_panel(snap, rows, feature, colouring, k)
        if len(rows) > 1:
            selection_panel(snap, rows, colouring)


def follow(run_id: str, step: int) -> None:
    """While the run trains, say when a newer snapshot exists (without redrawing the map)."""

    def poll() -> None:
        run = run_dir(run_id)
        newest = run.snapshots()[-1] if run and run.snapshots() else step
        if newest != step and st.button(f"Show the newest map (step {newest})",
                                        key="explore_newest"):
            set_later(f"explore_step_{run_id}", newest)
            st.rerun(scope="app")
        if run_status(run_id) not in ACTIVE:
            st.rerun(scope="app")

    st.fragment(poll, run_every=3.0)()


def shown_run() -> str | None:
    """The selected run when it has an embedding map, else the newest run that has one (the
    selection stays as it is until the user picks)."""
    run_id = selected_run()
    run = run_dir(run_id)
    if run is not None and run.snapshots():
        return run_id
    return next((r.id for r in registry().runs() if r.snapshots()), None)


def main() -> None:
    st.title("Explore")
    top = st.columns([3, 2])
    with top[0]:
        only_mine = participants.scope("explore_scope")
        run_id = pick_run("Run", shown_run(), "explore_run_picker", select_run,
                          need_snapshots=True,
                          only_owner=participants.name() if only_mine else None)
    if run_id is None:
        st.info("No run has an embedding map yet. Start one on the **Train** page: the first "
                "map is taken at step 0, then about every 15 s.")
        return
    run = run_dir(run_id)
    with top[1]:
        step = mapview.pick_step(run.snapshots(), key=f"explore_step_{run_id}")
    snap = mapview.load(run_id, step)
    if snap.data_error:
        st.warning(f"The images of this run cannot be shown: {snap.data_error}")
    kind, colouring, feature, k = controls(snap)
    if run_status(run_id) in ACTIVE or drawn_status(run_id) in ACTIVE:
        follow(run_id, step)  # also for a run that ended since its picker label was drawn
    if kind == "umap":
        mapview.wait_for_umap([(snap, feature)])
        error = mapview.umap_error(snap, feature)
        if error:
            st.warning(f"UMAP failed ({error}); showing PCA.")
    xy, shown = mapview.coords(snap, feature, kind)
    st.fragment(map_fragment)(snap, xy, shown, colouring, feature, k)
    # outside the fragment: a click reruns the fragment only, and the sprite sheet of every
    # image (megabytes for 10,000 images) is not sent again
    hover_thumbnails(mapview.map_id(snap, feature, shown), snap.run_id, snap.step, snap.thumbs)
    studio.section(snap)


main()
