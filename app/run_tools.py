"""The Runs page's tools for taking a run elsewhere: evaluate its checkpoint (a new run with
kNN, linear probe and a map), download it as a shareable archive, import someone's archive.
The work is the engine's (``engine.encoder.evaluate``, ``engine.share.archive``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from app.state import registry, run_dir
from engine.encoder.evaluate import evaluate_run
from engine.share.archive import export_run, import_run


def archive_bytes(run_id: str) -> bytes:
    """The run as a shareable archive (``python -m engine export-run``), in memory."""
    with tempfile.TemporaryDirectory() as tmp:
        return export_run(registry().run(run_id), Path(tmp)).read_bytes()


def tools(run_id: str) -> None:
    """Evaluate the selected run's checkpoint; download it as an archive to import elsewhere."""
    run = run_dir(run_id)
    if run is None:
        return
    has_checkpoint = run.checkpoint_path() is not None
    cols = st.columns(2)
    if cols[0].button("Evaluate its checkpoint", icon=":material/fact_check:",
                      key="evaluate_checkpoint", width="stretch", disabled=not has_checkpoint,
                      help="kNN, linear probe and a map of the saved encoder, as a new run"
                      if has_checkpoint else "This run has no checkpoint"):
        try:
            with st.spinner("Evaluating the checkpoint…"):
                evaluation, result = evaluate_run(registry().store, run_id)
        except (ValueError, OSError) as exc:
            st.error(f"**Cannot evaluate it:** {exc}")
        else:
            figures = " · ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in result.items()
                                 if k.startswith(("knn_top1", "linear_")))
            st.success(f"Evaluated as `{evaluation.id}`: {figures or 'no labels to score'}")
    cols[1].download_button("Share (run archive)", icon=":material/ios_share:",
                            data=lambda: archive_bytes(run_id), file_name=f"{run_id}.zip",
                            mime="application/zip", key="share_archive", width="stretch",
                            on_click="ignore",
                            help="Config, curves, maps with their images and the final "
                            "checkpoint: import it on another machine")


def upload_path(folder: Path, name: str) -> Path:
    """Where an uploaded archive is written before it is imported: in ``folder`` under the
    uploaded file's own name, which the imported run records as where it came from."""
    name = Path(name).name
    return folder / (name if name.endswith(".zip") else "run.zip")


def import_box() -> None:
    """Add a run archive from someone else to this runs folder."""
    with st.expander("Import a shared run"):
        upload = st.file_uploader("A run archive (.zip from Share or "
                                  "`python -m engine export-run`)", type=["zip"],
                                  key="import_archive")
        if upload is None or not st.button("Import", key="import_run"):
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = upload_path(Path(tmp), upload.name)
            path.write_bytes(upload.getvalue())
            try:
                run = import_run(path, registry().store)
            except (ValueError, OSError) as exc:
                st.error(f"**Cannot import it:** {exc}".replace(str(path), upload.name))
                return
        st.success(f"Imported `{run.id}`.")
