"""The live view of one run: status, headline numbers, loss and kNN curves, the learning rate
and every scalar the method logs, collapse diagnostics. Drawn inside a fragment that polls only
while the run trains (see ``show``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import streamlit as st

from app import charts, images
from app.controls import queue_text
from app.feed import Feed, feed
from app.run_info import ACTIVE, drawn_status, list_outdated, run_status
from app.state import run_dir
from engine.train.events import HELD, StepEvent

POLL_SECONDS = 1.0
#: a queued run's panel shows only its place in the queue: a slower poll keeps a room of
#: waiting participants from loading the server
QUEUED_POLL_SECONDS = 5.0
#: Every step event's own fields and the recorder's wall-clock stamp; the others are the
#: scalars its method logs by name
STEP_FIELDS = frozenset(StepEvent.__annotations__) | {"time"}
#: A method's logged scalar -> its words in the charts (others: the name, spaced)
SCALAR_NAMES = {
    "lr": "learning rate",
    "contrast_acc": "contrastive accuracy",  # MoCo: the positive key ranked first
    "tau": "target momentum τ",  # BYOL
    "rot_acc": "rotation accuracy",
    "invariance": "invariance term",  # VICReg's three, unweighted
    "variance": "variance term",
    "covariance": "covariance term",
    "loss_per_dim": "loss per dimension",  # Barlow Twins
    "z_std": "std of z",  # SimSiam
    "sup_loss": "supervised loss",  # FixMatch, SESEMI
    "unsup_loss": "unlabelled loss",
    "mask_rate": "pseudo-labelled fraction",
    "train_acc": "train accuracy",
    "ss_loss": "self-supervised loss",
    "ss_acc": "rotation-and-flip accuracy",
}


def show(run_id: str, key: str = "live") -> None:
    """Draw the run's live panel; it refreshes itself every second while the run is going
    (every 5 s while it is queued) and reruns the whole page once when the run's status
    differs from the one the page drew (so the picker's label and the buttons follow), or
    when runs were made or deleted since the run picker was drawn (so it lists them; at most
    every ``LIST_REFRESH_S``)."""
    status = run_status(run_id)
    drawn = drawn_status(run_id) or status  # what the page above shows, read before now
    st.session_state[f"{key}_status"] = (run_id, drawn)  # one key a panel, not one a run
    every = QUEUED_POLL_SECONDS if status == "queued" else POLL_SECONDS
    polls = status in ACTIVE or drawn in ACTIVE  # a run that ended while the page was drawn
    st.fragment(_panel, run_every=every if polls else None)(run_id, key)


def _panel(run_id: str, key: str) -> None:
    run = run_dir(run_id)
    if run is None:
        st.info("This run was deleted.")
        return
    status = run_status(run_id)
    status_key = f"{key}_status"
    if (run_id, status) != st.session_state.get(status_key):
        st.session_state[status_key] = (run_id, status)
        st.rerun(scope="app")  # the run paused, resumed or ended: redraw the controls
    if list_outdated():
        st.rerun(scope="app")  # runs were made or deleted: the run picker lists them
    try:
        cfg = run.config()
    except ValueError as exc:
        st.error(f"**This run cannot be shown:** {exc}")
        return
    f = feed(run_id)
    _status_line(f, run_id, status, run.summary())
    if status == "queued":
        return
    _headline(f, cfg)
    _curves(f, key)
    steps = run.snapshots()
    if steps:
        reconstructions_panel(run_id, steps[-1])
    diag = f.events("diagnostics")
    if diag:
        diagnostics_panel(diag, key)


def _status_line(f: Feed, run_id: str, status: str, summary: dict[str, Any]) -> None:
    failed = f.last("failed")
    if status == "failed" or failed:
        error = (failed or {}).get("error") or summary.get("error") or "unknown error"
        st.error(f"**The run failed:** {error}", icon=":material/error:")
        return
    finished = f.last("finished")
    start = f.last("start")
    if status == "queued":
        st.info(f"{queue_text(run_id)}. Its time budget starts when it starts.",
                icon=":material/hourglass_top:")
        return
    last_status = f.last("status") or {}
    if status == "paused":
        st.info("Paused. Press Resume to go on." if last_status.get("message") == HELD else
                "Pausing: the steps or the evaluation under way finish first…")
    elif status in ("loading", "running") and start is None:
        st.info(f"Starting: {last_status.get('message', 'loading data')}…")
    elif status == "interrupted":
        reason = summary.get("reason") or "the process that trained it ended before it finished"
        more = (" Resume continues it from its last checkpoint." if summary.get("resumable")
                else "")
        st.warning(f"Interrupted: {reason}.{more}")
    elif finished and status not in ACTIVE:
        st.success(f"{status.capitalize()}: {finished.get('reason', '')}")
    if start is not None:
        st.caption(" · ".join(_setup_words(start, summary.get("processes", 1))))


def _setup_words(start: dict[str, Any], processes: int = 1) -> list[str]:
    """What the run's start event says of its data and network, and how many processes train
    it (torchrun); what it leaves out (a run tracked from someone's own loop) is left out here
    too."""
    ds = start.get("dataset") or {}
    words = [f"{ds['name']}: {ds['train']} train / {ds['test']} test images at "
             f"{ds['image_size']} px"] if {"name", "train", "test", "image_size"} <= set(ds) else []
    if start.get("device"):
        words.append(f"device {start['device']}")
    if processes > 1:
        words.append(f"{processes} processes")
    if start.get("batch_size"):
        words.append(f"{'global ' if processes > 1 else ''}batch {start['batch_size']}")
    if start.get("parameters"):
        words.append(f"{start['parameters'] / 1e6:.2f} M parameters")
    return words


def _time_left(step: dict[str, Any], cfg: Any) -> str:
    elapsed, progress = step.get("elapsed", 0.0), step.get("progress", 0.0)
    if cfg.train.max_seconds:
        left = max(0.0, cfg.train.max_seconds - elapsed)
        if progress > 0:
            left = min(left, elapsed * (1 - progress) / progress)
    elif progress > 0:
        left = elapsed * (1 - progress) / progress
    else:
        return "?"
    return f"{int(left // 60)}:{int(left % 60):02d}"


def _headline(f: Feed, cfg: Any) -> None:
    step = f.last("step")
    evals = f.events("eval")
    cols = st.columns(6)
    if step is None:
        cols[0].metric("Step", 0)
        cols[1].metric("Loss", "–")
    else:
        cols[0].metric("Step", f"{step['step']:,}", f"epoch {step.get('epoch', 0):.1f}",
                       delta_color="off", delta_arrow="off")
        cols[1].metric("Loss", f"{step['loss']:.4f}")
    if evals and "knn_top1" in evals[-1]:
        last = evals[-1]["knn_top1"]
        delta = last - evals[0]["knn_top1"] if len(evals) > 1 else None
        cols[2].metric("kNN top-1", f"{last:.3f}",
                       f"{delta:+.3f} since start" if delta is not None else None)
    else:
        cols[2].metric("kNN top-1", "–")
    if step is not None:
        cols[3].metric("Images / s", f"{step.get('images_per_s', 0):,.0f}")
        cols[4].metric("Learning rate", f"{step.get('lr', 0):.2e}")
        cols[5].metric("Time left", _time_left(step, cfg))
        # a step's progress is taken before it; the finished event has the run's last word
        progress = float((f.last("finished") or step).get("progress", 0.0))
        st.progress(min(max(progress, 0.0), 1.0), text=f"{progress:.0%}")


def _curves(f: Feed, key: str) -> None:
    left, right = st.columns(2)
    with left:
        loss_chart(f, key)
    with right:
        knn_chart(f, key)
    scalars_chart(f, key)


@st.cache_data(max_entries=16, show_spinner=False)
def _reconstructions(run_id: str, step: int) -> np.ndarray | None:
    """uint8 (3, n, C, H, W) of a snapshot, or None (the method reconstructs nothing). Read
    once per snapshot, not at every poll."""
    run = run_dir(run_id)
    try:
        return None if run is None else run.load_snapshot(step).get("reconstructions")
    except (OSError, ValueError):  # deleted meanwhile: the next poll reads the next one
        return None


def reconstructions_panel(run_id: str, step: int) -> None:
    """What a masked image model sees and fills in, at the latest evaluation."""
    pictures = _reconstructions(run_id, step)
    if pictures is None:
        return
    st.subheader("Reconstructions")
    st.caption(f"Step {step}, the same test images and hidden patches at every evaluation. "
               "Top: the image. Middle: what the network is shown, its hidden patches masked "
               "out. Bottom: the hidden patches as the network fills them in.")
    n = pictures.shape[1]
    st.image(images.grid(pictures.reshape(-1, *pictures.shape[2:]), columns=n, size=72))


def loss_chart(f: Feed, key: str, title: str = "Training loss") -> None:
    steps = f.events("step")
    if not steps:
        st.caption("The loss curve appears with the first training step.")
        return
    series = {"loss": ([e["step"] for e in steps], [e["loss"] for e in steps])}
    fig = charts.curves(series, title, "loss")
    st.plotly_chart(fig, key=f"{key}_loss", config={"displayModeBar": False})


def logged_scalars(steps: list[dict[str, Any]]) -> list[str]:
    """The scalars the method logs besides its loss (``StepOutput.logs``), in its order."""
    names = dict.fromkeys(k for e in (steps[0], steps[-1]) for k in e)
    return [k for k in names if k not in STEP_FIELDS and _finite(steps[-1].get(k))]


def scalar_name(name: str) -> str:
    return SCALAR_NAMES.get(name, name.replace("_", " "))


def scalars_chart(f: Feed, key: str, columns: int = 3) -> None:
    """The learning rate and every scalar the method logs, a small chart each (their own
    scales), over the steps."""
    steps = f.events("step")
    if not steps:
        return
    series: dict[str, tuple[list, list]] = {}
    for name in ["lr", *logged_scalars(steps)]:
        pts = [(e["step"], e[name]) for e in steps if _finite(e.get(name))]
        if pts:
            series[scalar_name(name)] = ([p[0] for p in pts], [p[1] for p in pts])
    if not series:
        return
    fig = charts.small_multiples(series, "Learning rate and what the method logs", columns)
    st.plotly_chart(fig, key=f"{key}_scalars", config={"displayModeBar": False})


def knn_chart(f: Feed, key: str, title: str = "kNN accuracy on the test split") -> None:
    evals = f.events("eval")
    if not evals:
        st.caption("kNN accuracy appears after the first evaluation (at step 0).")
        return
    series: dict[str, tuple[list, list]] = {}
    keys = [k for k in evals[-1] if k.startswith("knn_") and isinstance(evals[-1][k], float)]
    for k in keys:
        pts = [(e["step"], e[k]) for e in evals if k in e and _finite(e[k])]
        if pts:
            series[_knn_name(k)] = ([p[0] for p in pts], [p[1] for p in pts])
    attributes = [n for n in series if not n.startswith("class")]
    fig = charts.curves(series, title, "top-1", y_range=(0, 1.02), dashed=attributes,
                        hidden=attributes[1:])
    st.plotly_chart(fig, key=f"{key}_knn", config={"displayModeBar": False})


def compact(run_id: str, key: str) -> None:
    """A narrow panel of one run for side-by-side views (the Lessons page): status, step,
    loss and kNN, the curves and the collapse diagnostics stacked in one column. Draws once;
    the caller polls (one fragment for all the runs side by side)."""
    run = run_dir(run_id)
    if run is None:
        st.info("This run was deleted.")
        return
    f = feed(run_id)
    _status_line(f, run_id, run_status(run_id), run.summary())
    step, evals = f.last("step"), f.events("eval")
    cols = st.columns(3)
    cols[0].metric("Step", f"{step['step']:,}" if step else 0)
    cols[1].metric("Loss", f"{step['loss']:.4f}" if step else "–")
    last_knn = evals[-1].get("knn_top1") if evals else None
    cols[2].metric("kNN top-1", f"{last_knn:.3f}" if _finite(last_knn) else "–")
    loss_chart(f, key)
    if step is not None and logged_scalars([step]):
        st.caption(" · ".join(f"{scalar_name(k)}: {step[k]:.3g}" for k in logged_scalars([step])))
    knn_chart(f, key)
    diag = f.events("diagnostics")
    if diag:
        diagnostics_panel(diag, key)


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _knn_name(key: str) -> str:
    if key == "knn_top1":
        return "class (h)"
    if key == "knn_top1_z":
        return "class (z)"
    return f"{key[4:]} (h)"


def diagnostics_panel(events: list[dict[str, Any]], key: str = "live") -> None:
    """Collapse diagnostics, compact: std of z against its healthy value, effective ranks,
    alignment / uniformity, and the alarm in plain words."""
    d = events[-1]
    alarm = d.get("alarm") or {}
    st.markdown("##### Collapse diagnostics")
    if alarm.get("kind") not in (None, "none"):
        text = f"**{alarm.get('message', alarm['kind'])}**"
        causes = alarm.get("causes") or []
        if causes:
            text += "\n\nUsual causes:\n" + "\n".join(f"- {c}" for c in causes)
        show = st.error if alarm.get("severity") == "critical" else st.warning
        show(text, icon=":material/warning:")
    cols = st.columns(4)
    std, healthy = d.get("std_z"), d.get("std_healthy")
    if std is not None:
        cols[0].metric("std of z", f"{std:.3f}",
                       f"healthy ≈ {healthy:.3f}" if healthy else None, delta_color="off",
                       delta_arrow="off",
                       help="Mean per-dimension std of the L2-normalised projection; "
                       "1/√d when healthy, 0 when collapsed (SimSiam).")
    if d.get("rank_z") is not None:
        cols[1].metric("Effective rank z", f"{d['rank_z']:.1f}", f"of {d.get('dim_z', '?')}",
                       delta_color="off", delta_arrow="off",
                       help="RankMe: exp(entropy of normalised singular values). Far below the "
                       "dimension: dimensional collapse.")
    if d.get("rank_h") is not None:
        cols[2].metric("Effective rank h", f"{d['rank_h']:.1f}")
    if d.get("alignment") is not None and d.get("uniformity") is not None:
        cols[3].metric("Alignment / uniformity", f"{d['alignment']:.2f} / {d['uniformity']:.2f}",
                       help="Wang & Isola 2020: alignment = mean squared distance of positive "
                       "pairs (lower is better); uniformity = log mean Gaussian potential "
                       "(lower is more uniform).")
    if len(events) > 1:
        xs = [e["step"] for e in events]
        series = {}
        if healthy:
            series["std z / healthy"] = (xs, [e.get("std_z", 0) / healthy for e in events])
        if d.get("dim_z"):
            series["rank z / dim"] = (xs, [e.get("rank_z", 0) / d["dim_z"] for e in events])
        if series:
            st.plotly_chart(charts.curves(series, "Collapse over training (1 = healthy)",
                                          height=220),
                            key=f"{key}_diag", config={"displayModeBar": False})
    collapsed = alarm.get("kind") not in (None, "none")
    with st.expander("Singular values and pair similarities", expanded=collapsed):
        spectrum_and_pairs(d, key)


def spectrum_and_pairs(d: dict[str, Any], key: str = "live") -> None:
    """The last probe's singular value spectra of z and h, and the histograms of cosine
    similarity between the two views of one image (positive pairs) and between different
    images (negative pairs)."""
    left, right = st.columns(2)
    spectra = {name: d[k] for name, k in (("z", "spectrum_z"), ("h", "spectrum_h")) if d.get(k)}
    with left:
        if spectra:
            st.plotly_chart(charts.spectrum(spectra, f"Spectrum at step {d.get('step', '?')}"),
                            key=f"{key}_spectrum", config={"displayModeBar": False})
            st.caption("Singular values over the largest. A long flat tail near 1 uses many "
                       "directions; a cliff after a few values is dimensional collapse.")
    hists = {name: d[k] for name, k in (("positive pairs", "pos_hist"),
                                        ("negative pairs", "neg_hist")) if d.get(k)}
    with right:
        if hists:
            st.plotly_chart(charts.histograms(hists, "Cosine similarity of pairs"),
                            key=f"{key}_pairs", config={"displayModeBar": False})
            st.caption("Healthy: positives near 1, negatives spread around 0. Both piled up "
                       "at 1: every image looks the same (complete collapse).")
