"""Runs: every run on disk (this app's, earlier sessions', the CLI's): open, compare, download,
delete."""

from __future__ import annotations

import streamlit as st

from app.feed import forget
from app.run_info import row
from app.state import map_cache, registry, run_dir, select_run, selected_run

TRAIN, EXPLORE, COMPARE = "app/pages/train.py", "app/pages/explore.py", "app/pages/compare.py"


@st.dialog("Delete this run?")
def confirm_delete(run_id: str) -> None:
    st.write(f"`{run_id}` and everything in its directory (curves, maps, checkpoints) will be "
             "deleted. A run still training is stopped first.")
    cols = st.columns(2)
    if cols[0].button("Delete", type="primary", key="confirm_delete", width="stretch"):
        registry().delete(run_id)
        forget(run_id)
        map_cache().clear(run_id)
        if selected_run() == run_id:
            select_run(None)
        st.session_state.pop("runs_table", None)
        st.rerun()
    if cols[1].button("Cancel", key="cancel_delete", width="stretch"):
        st.rerun()


def actions(run_id: str) -> None:
    run = run_dir(run_id)
    if run is None:
        return
    r = row(run)
    st.markdown(f"**Selected:** {r['method']} on {r['data']}, {r['status']} "
                f"· `{run_id}`")
    if r["error"]:
        st.error(f"**This run failed:** {r['error']}")
    cols = st.columns(4)
    if cols[0].button("Open in Train", icon=":material/monitoring:", key="open_train",
                      width="stretch"):
        select_run(run_id)
        st.switch_page(TRAIN, query_params={"run": run_id})
    if cols[1].button("Explore its map", icon=":material/scatter_plot:",
                      key="open_explore", width="stretch",
                      disabled=not run.snapshots()):
        select_run(run_id)
        st.switch_page(EXPLORE, query_params={"run": run_id})
    cols[2].download_button("Download (zip)", icon=":material/download:",
                            data=run.zip_bytes, file_name=f"{run_id}.zip",
                            mime="application/zip", key="download", width="stretch")
    if cols[3].button("Delete…", icon=":material/delete:", key="delete", width="stretch"):
        confirm_delete(run_id)


def main() -> None:
    st.title("Runs")
    runs = registry().runs()
    st.caption(f"{len(runs)} run(s) in `{registry().store.root}`, newest first. Select a row "
               "to open, download or delete it; select two to compare them.")
    if not runs:
        st.info("No runs yet. Start one on the **Train** page, or from a shell: "
                "`python -m engine train`.")
        return
    table = [row(r) for r in runs]
    attr_cols = sorted({k for t in table for k in t if k.startswith("kNN ")} - {"kNN top-1"})
    knn_cols = ["kNN top-1", *attr_cols]
    named = ["name"] if any(t["name"] for t in table) else []
    errors = ["error"] if any(t["error"] for t in table) else []
    order = ["status", "method", "data", "backbone", *named, *knn_cols, "steps", "images/s",
             "created", *errors, "run"]
    table = [{c: t.get(c) for c in order} for t in table]
    event = st.dataframe(
        table, key="runs_table", on_select="rerun", selection_mode="multi-row",
        hide_index=True, width="stretch", column_order=order,
        column_config={
            "kNN top-1": st.column_config.NumberColumn("kNN class", format="%.3f",
                                                       help="kNN top-1 accuracy on the class"),
            **{c: st.column_config.NumberColumn(c, format="%.3f") for c in attr_cols},
            "images/s": st.column_config.NumberColumn(format="%.0f"),
            "error": st.column_config.TextColumn(width="medium"),
        },
    )
    chosen = [table[i]["run"] for i in event.selection.rows if i < len(table)]
    if len(chosen) == 1:
        actions(chosen[0])
    elif len(chosen) == 2:
        if st.button("Compare these two runs", icon=":material/compare:", type="primary",
                     key="compare"):
            select_run(chosen[1], "a")
            select_run(chosen[0], "b")
            st.switch_page(COMPARE, query_params={"a": chosen[1], "b": chosen[0]})
    elif len(chosen) > 2:
        st.info("Select one run to act on it, or two to compare them.")


main()
