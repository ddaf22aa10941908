"""Runs: every run on disk (this app's, earlier sessions', the CLI's): open, compare, download,
delete."""

from __future__ import annotations

import hashlib

import streamlit as st

from app import controls, participants, run_tools
from app.feed import forget
from app.run_info import owner, row
from app.state import map_cache, registry, run_dir, select_run, selected_run

TABLE = "runs_table"
TRAIN, EXPLORE, COMPARE = "app/pages/train.py", "app/pages/explore.py", "app/pages/compare.py"


@st.dialog("Delete this run?")
def confirm_delete(run_id: str) -> None:
    st.write(f"`{run_id}` and everything in its directory (curves, maps, checkpoints) will be "
             "deleted. A run still training is stopped first.")
    cols = st.columns(2)
    if cols[0].button("Delete", type="primary", key="confirm_delete", width="stretch"):
        error = controls.act("delete", run_id, participants.actor())
        if error:
            st.error(error, icon=":material/block:")
            return
        forget(run_id)
        map_cache().clear(run_id)
        if selected_run() == run_id:
            select_run(None)
        st.rerun()
    if cols[1].button("Cancel", key="cancel_delete", width="stretch"):
        st.rerun()


def actions(run_id: str) -> None:
    run = run_dir(run_id)
    if run is None:
        return
    r = row(run)
    actor = participants.actor()
    st.markdown(f"**Selected:** {r['method']} on {r['data']} by {r['owner']}, {r['status']} "
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
                            mime="application/zip", key="download", width="stretch",
                            on_click="ignore")
    allowed = controls.may_act(actor, run_id)
    if cols[3].button("Delete…", icon=":material/delete:", key="delete", width="stretch",
                      disabled=not allowed,
                      help=None if allowed else "Only its owner or the instructor may delete it"):
        confirm_delete(run_id)
    controls.buttons(run_id, actor, key="runs_")
    run_tools.tools(run_id)


def table_key(table: list[dict]) -> str:
    """The table's key names its rows: a selection is a list of row numbers, so when a run
    appears or goes (anyone's), a new table starts with nothing selected rather than with
    another run under the same number."""
    ids = "\n".join(t["run"] for t in table)
    return f"{TABLE}_{hashlib.sha1(ids.encode()).hexdigest()[:12]}"


def main() -> None:
    st.title("Runs")
    only_mine = participants.scope("runs_scope_switch")
    runs = registry().runs()
    if only_mine:
        runs = [r for r in runs if owner(r) == participants.name()]
    st.caption(f"{len(runs)} run(s) in `{registry().store.root}`, newest first. Select a row "
               "to open, download or delete it; select two to compare them.")
    run_tools.import_box()
    if not runs and only_mine:
        st.info("You have no runs yet. Start one on the **Train** page.")
        return
    if not runs:
        st.info("No runs yet. Start one on the **Train** page, or from a shell: "
                "`python -m engine train`.")
        return
    table = [row(r) for r in runs]
    attr_cols = sorted({k for t in table for k in t if k.startswith("kNN ")} - {"kNN top-1"})
    knn_cols = ["kNN top-1", *attr_cols]
    named = ["name"] if any(t["name"] for t in table) else []
    errors = ["error"] if any(t["error"] for t in table) else []
    # second-stage runs: the run whose encoder they start from, and their classifier's accuracy
    staged = ["parent"] if any(t["parent"] for t in table) else []
    classifier = ["classifier top-1"] if any(t["classifier top-1"] is not None
                                             for t in table) else []
    order = ["status", "owner", "method", "data", "backbone", *named, *staged, *knn_cols,
             *classifier, "steps", "images/s", "created", *errors, "run"]
    table = [{c: t.get(c) for c in order} for t in table]
    event = st.dataframe(
        table, key=table_key(table), on_select="rerun", selection_mode="multi-row",
        hide_index=True, width="stretch", column_order=order,
        column_config={
            "kNN top-1": st.column_config.NumberColumn("kNN class", format="%.3f",
                                                       help="kNN top-1 accuracy on the class"),
            **{c: st.column_config.NumberColumn(c, format="%.3f") for c in attr_cols},
            "classifier top-1": st.column_config.NumberColumn(
                format="%.3f", help="Test accuracy of the run's own classifier (cross-entropy, "
                "or a second stage's head)"),
            "parent": st.column_config.TextColumn(help="The run whose encoder this one "
                                                  "started from (model.init_from)"),
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
