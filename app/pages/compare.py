"""Compare: two runs on the same images side by side: maps with the same colouring, kNN accuracy,
neighbour precision, and one query image's neighbours under each run."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import charts, mapview, participants
from app.hover import hover_thumbnails
from app.run_info import label, labels, pick_run
from app.state import registry, run_dir, select_run, selected_run
from engine.eval.clusters import compare_runs


def default_pair() -> tuple[str | None, str | None]:
    """The URL's pair, else the two newest runs with maps on the same data set."""
    a, b = selected_run("a"), selected_run("b")
    if a and b:
        return a, b
    runs = [r for r in registry().runs() if r.snapshots()]
    for i, first in enumerate(runs):
        data = first.config().data
        for second in runs[i + 1 :]:
            if second.config().data == data:
                return a or second.id, b or first.id
    return a or (runs[1].id if len(runs) > 1 else None), b or (runs[0].id if runs else None)


def aligned(sa: mapview.Snapshot, sb: mapview.Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Rows of each snapshot showing the same test images, in the same order."""
    common, ia, ib = np.intersect1d(sa.arrays["index"], sb.arrays["index"], return_indices=True)
    return ia, ib


def metrics_table(runs: list[str], snaps: list[mapview.Snapshot], rows: list[np.ndarray],
                  feature: str, colouring: str, k: int) -> None:
    codes = snaps[0].codes(colouring)[0][rows[0]]
    fa = snaps[0].arrays[feature if feature in snaps[0].arrays else "h"][rows[0]]
    fb = snaps[1].arrays[feature if feature in snaps[1].arrays else "h"][rows[1]]
    try:
        cmp = compare_runs(fa, fb, codes, k=k)
    except ValueError as exc:
        st.warning(f"Cannot compare these snapshots: {exc}")
        return
    table = []
    names = labels(run_dir(r) for r in runs)
    for side, run_id, snap in (("a", runs[0], snaps[0]), ("b", runs[1], snaps[1])):
        run = run_dir(run_id)
        evals = [e for e in run.metrics("eval") if e.get("step") == snap.step]
        ev = evals[-1] if evals else {}
        knn_key = "knn_top1" if colouring == "class" else f"knn_{colouring}"
        sil = cmp.get(f"silhouette_{side}")
        table.append({
            "run": names[run_id],
            "step": snap.step,
            "epochs": epochs_at(run, snap.step),
            "seconds": seconds_at(run, snap.step),
            f"kNN top-1 ({colouring})": ev.get(knn_key),
            f"precision@{k} ({colouring})": cmp[f"precision_{side}"],
            "silhouette": sil,
            "linear probe (final)": run.summary().get("linear_top1"),
            "classifier (final)": run.summary().get("classifier_top1"),
        })
    formats = {"epochs": "%.1f", "seconds": "%.0f"}
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format=formats.get(c, "%.3f"))
                                for c in table[0] if c not in ("run", "step")})
    budget_note(table)
    st.caption(f"Neighbourhood overlap (mean Jaccard of the top-{k} neighbour sets of each "
               f"image under the two runs): **{cmp['overlap']:.2f}**. Precision@{k}: the share of "
               "an image's neighbours with its label; silhouette: how well separated the label "
               "clusters are (cosine, −1 to 1); linear probe: test accuracy of a linear head "
               "trained on the frozen final encoder (SupCon's second stage), for any method; "
               "classifier: the test accuracy of the run's own classifier (cross-entropy's, "
               "or a second-stage run's head).")


def epochs_at(run, step: int) -> float | None:  # noqa: ANN001
    """Epochs of training at ``step`` (the run's steps per epoch, from its start event)."""
    starts = run.metrics("start")
    per = starts[-1].get("steps_per_epoch") if starts else None
    return step / per if per else None


def seconds_at(run, step: int) -> float | None:  # noqa: ANN001
    """The run's own seconds of training when it reached ``step`` (its nearest step event)."""
    steps = [e for e in run.metrics("step") if e.get("step", 0) <= step]
    return steps[-1].get("elapsed") if steps else None


def same_epochs(run_a, run_b) -> tuple[int | None, int | None, str | None]:  # noqa: ANN001
    """The steps Compare opens at: each run's last snapshot, except that the run trained
    longer is shown at its snapshot nearest the other's last epochs (a fair default: SupCon's
    steps cost about two of cross-entropy's, so runs of the same time differ twofold in
    steps). Returns both steps and, when one was moved, a sentence saying so."""
    sa, sb = run_a.snapshots(), run_b.snapshots()
    if not sa or not sb:
        return None, None, None
    ea, eb = epochs_at(run_a, sa[-1]), epochs_at(run_b, sb[-1])
    if ea is None or eb is None or abs(ea - eb) <= 0.1 * max(ea, eb):
        return sa[-1], sb[-1], None
    longer, steps, target, side = ((run_a, sa, eb, "A") if ea > eb else (run_b, sb, ea, "B"))
    best = min(steps, key=lambda s: abs((epochs_at(longer, s) or 0) - target))
    if abs((epochs_at(longer, best) or 0) - target) > 0.1 * target:
        return sa[-1], sb[-1], None  # no snapshot near: show both ends and warn below
    words = (f"{side} is shown at step {best} ({epochs_at(longer, best):.1f} epochs), its map "
             f"nearest the other run's {target:.1f} epochs, so both compare at the same "
             f"training; its last map is step {steps[-1]} (move the slider).")
    return (best, sb[-1], words) if side == "A" else (sa[-1], best, words)


def budget_note(table: list[dict]) -> None:
    """Say which budget the two columns share: a comparison of methods at unequal training
    (SupCon's step costs about two of cross-entropy's, so an equal time budget gives it half
    the steps) measures the budgets as much as the methods."""
    a, b = (row.get("epochs") for row in table)
    if a is None or b is None:
        return
    if abs(a - b) <= 0.1 * max(a, b):
        st.caption(f"Same budget: both at {a:.1f} epochs of training (the maps and numbers "
                   "above compare methods, not budgets).")
        return
    st.warning(f"Unequal budgets: A at {a:.1f} epochs, B at {b:.1f}. Silhouette and kNN move "
               "with training, so part of the difference is the budget. For a fair comparison "
               "train both for the same number of epochs (Train page: Budget, Epochs), or pick "
               "steps with the same epochs above.", icon=":material/balance:")


def maps_fragment(runs: list[str], snaps: list[mapview.Snapshot], rows: list[np.ndarray],
                  kind: str, feature: str, colouring: str, k: int) -> None:
    """Both maps (same colouring; clicking either picks the query) and the query's neighbours
    under each run, side by side."""
    names = snaps[0].codes(colouring)[1]
    st.markdown(charts.legend_html(names), unsafe_allow_html=True)
    cols = st.columns(2, gap="large")
    changed: int | None = None
    for side, col, run_id, snap, r in zip("ab", cols, runs, snaps, rows, strict=True):
        with col:
            f = feature if feature in snap.arrays else "h"
            xy, shown = mapview.coords(snap, f, kind)
            codes = snap.codes(colouring)[0]
            hover = [snap.describe_row(i) for i in r]
            map_id = f"compare_map_{side}_{run_id}_{snap.step}_{f}_{shown}"
            fig = charts.embedding_map(xy[r], codes[r], names, hover, height=480,
                                       title=f"{side.upper()}: {label(run_dir(run_id), False)}",
                                       meta=map_id)
            event = st.plotly_chart(fig, key=map_id, on_select="rerun",
                                    selection_mode=("points",), config={"displayModeBar": False})
            thumbs = None if snap.thumbs is None else snap.thumbs[r]
            hover_thumbnails(map_id, f"{run_id}_{side}_{len(r)}", snap.step, thumbs)
            sel = charts.selected_rows(event)
            seen_key = f"compare_seen_{side}"
            if sel and sel != st.session_state.get(seen_key):
                changed = sel[-1]  # the map just clicked sets the query
            st.session_state[seen_key] = sel
    if changed is not None:
        st.session_state["compare_query"] = changed
    q = st.session_state.get("compare_query")
    if q is None or q >= len(rows[0]):
        st.info("Click an image on either map (or press **Random query**) to see its "
                "neighbours under each run.")
        return
    codes_a, names = snaps[0].codes(colouring)
    qa = int(rows[0][q])
    st.markdown(f"**Query** · {snaps[0].describe_row(qa)}")
    mapview.gallery(snaps[0], [qa], [mapview._name(names, codes_a[qa])], size=128)
    cols = st.columns(2, gap="large")
    for side, col, snap, r in zip("ab", cols, snaps, rows, strict=True):
        with col:
            f = feature if feature in snap.arrays else "h"
            row = int(r[q])
            sims, idx = mapview.neighbours(snap, f, row, k)
            codes = snap.codes(colouring)[0]
            p = mapview.precision(snap, idx, row, colouring)
            st.markdown(f"**{side.upper()}**: neighbours"
                        + (f" · precision@{len(idx)} **{p:.2f}**" if p is not None else ""))
            captions = [f"{'✓' if codes[j] == codes[row] else '✗'} "
                        f"{mapview._name(names, codes[j])} · {s:.3f}"
                        for j, s in zip(idx, sims, strict=True)]
            mapview.gallery(snap, idx.tolist(), captions, size=96, per_row=5)


def main() -> None:
    st.title("Compare")
    default_a, default_b = default_pair()
    mine = participants.name() if participants.scope("compare_scope") else None
    cols = st.columns(2)
    with cols[0]:
        a = pick_run("Run A", default_a, "compare_a", lambda i: select_run(i, "a"),
                     need_snapshots=True, only_owner=mine)
    with cols[1]:
        b = pick_run("Run B", default_b, "compare_b", lambda i: select_run(i, "b"),
                     need_snapshots=True, only_owner=mine)
    if a is None or b is None or a == b:
        st.info("Pick two different runs with embedding maps. The motivating pair: train "
                "**supcon** and **cross_entropy** on the same data set from the Train page.")
        return
    select_run(a, "a")
    select_run(b, "b")
    run_a, run_b = run_dir(a), run_dir(b)
    if run_a.config().data != run_b.config().data:
        st.warning("These runs use different data settings; only the test images both maps "
                   "share are compared.")
    default_a, default_b, moved = same_epochs(run_a, run_b)
    step_cols = st.columns(2)
    with step_cols[0]:
        step_a = mapview.pick_step(run_a.snapshots(), f"compare_step_a_{a}", "Step of A",
                                   default_a)
    with step_cols[1]:
        step_b = mapview.pick_step(run_b.snapshots(), f"compare_step_b_{b}", "Step of B",
                                   default_b)
    if moved and (step_a, step_b) == (default_a, default_b):
        st.caption(moved)
    snaps = [mapview.load(a, step_a), mapview.load(b, step_b)]
    rows = list(aligned(*snaps))
    if len(rows[0]) < 10:
        st.error("These two runs share fewer than 10 test images; they cannot be compared.")
        return

    ctl = st.columns([2, 2, 1, 2, 2])
    kind = ctl[0].radio("Map", list(mapview.MAP_KINDS), horizontal=True, key="compare_kind",
                        format_func=mapview.MAP_KINDS.get)
    colourings = [c for c in snaps[0].colourings() if c in snaps[1].colourings()]
    colouring = ctl[1].selectbox("Colour by", colourings, key="compare_colour")
    # either run's features: a run without a projection (cross-entropy) shows its h for z
    features = [*snaps[0].features, *(f for f in snaps[1].features if f not in snaps[0].features)]
    feature = ctl[2].radio("Feature", features, horizontal=True, key="compare_feature",
                           help="h: the encoder's pooled output; z: the projection the loss "
                           "sees (contrastive methods)")
    k = ctl[3].slider("Neighbours k", 1, 30, 10, key="compare_k")
    with ctl[4]:
        st.write("")
        if st.button("Random query", icon=":material/casino:", key="compare_random",
                     width="stretch"):
            st.session_state["compare_query"] = int(np.random.default_rng().integers(len(rows[0])))

    lacking = [side for side, snap in zip("AB", snaps, strict=True) if feature not in snap.features]
    if lacking:
        st.caption(f"{' and '.join(lacking)} has no {feature} (no projection head): its h is "
                   f"shown instead, beside the other run's {feature}.")
    metrics_table([a, b], snaps, rows, feature, colouring, k)
    if kind == "umap":
        mapview.wait_for_umap([(snaps[0], feature), (snaps[1], feature)])
    st.fragment(maps_fragment)([a, b], snaps, rows, kind, feature, colouring, k)


main()
