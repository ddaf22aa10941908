"""What a lesson's checks may name: the metrics of one finished run, read from its directory.

A check (``engine.lessons``) compares a run's metric with a value or with another run's; the
metrics come from the run's summary, its evaluations, its last collapse diagnostics, its loss
curve and step logs, and its last embedding snapshot (:func:`run_metrics`).
"""

from __future__ import annotations

from typing import Any

from engine.train.events import StepEvent
from engine.train.store import RunDir

#: what a check may name (see :func:`run_metrics`), besides any ``knn_...`` key of the summary
METRICS = frozenset({
    "status", "std_z", "std_ratio", "rank_z", "rank_h", "rank_z_fraction", "rank_h_fraction",
    "rank_z_peak", "alignment", "uniformity", "pos_cos", "neg_cos", "alarm", "alarm_severity",
    "loss_first", "loss_last", "loss_drop", "silhouette", "neighbour_purity",
    "linear_top1", "silhouette_z", "neighbour_purity_z",
})
#: measured only for some runs: the test accuracy of a method's own classifier head
#: (cross-entropy, FixMatch, SESEMI)
CLASSIFIER_METRICS = frozenset({"classifier_top1"})
#: a method's own step log ``KEY`` (e.g. FixMatch's ``mask_rate``) as ``log_KEY_first`` or
#: ``log_KEY_last``: its mean over the first or last tenth of the step events
LOG_PREFIX, LOG_SUFFIXES = "log_", ("_first", "_last")


def known_metric(name: str) -> bool:
    return (name in METRICS or name in CLASSIFIER_METRICS or name.startswith("knn_")
            or (name.startswith(LOG_PREFIX) and name.endswith(LOG_SUFFIXES)))


def run_metrics(run: RunDir) -> dict[str, Any]:
    """Everything a check may name, for a finished run.

    From the summary: ``knn_top1``, ``knn_top1_z``, ``knn_<attribute>``, ``status``; from the
    evaluations: ``<knn key>_gain`` (the last minus the first, at step 0, e.g. ``knn_top1_gain``).
    From the last diagnostics event: ``std_z``, ``std_ratio`` (std_z / healthy), ``rank_z``,
    ``rank_h``, ``rank_z_fraction`` and ``rank_h_fraction`` (the rank over the largest one the
    probe batch can show, min(probe size, dimension), as the alarm reads it), ``rank_z_peak``
    (the highest rank_z of any probe after step 0, to see a rank that fell), ``alignment``,
    ``uniformity``, ``pos_cos`` and ``neg_cos`` (mean cosine similarity of positive pairs, two
    views of one image, and of negative pairs, two different images), ``alarm`` (complete |
    dimensional | none) and ``alarm_severity`` (critical | warning | none). From the loss
    curve: ``loss_first``, ``loss_last``, ``loss_drop`` (first minus last, over the first and
    last tenth). From the method's own step logs: ``log_<key>_first`` and ``log_<key>_last``
    (e.g. FixMatch's ``log_mask_rate_first``, RotNet's ``log_rot_acc_last``), means over the
    first and last tenth of the step events.
    From the last snapshot: ``silhouette`` and ``neighbour_purity`` of ``h`` by class (and
    ``silhouette_z``, ``neighbour_purity_z`` of the projection ``z`` where there is one). From
    the end of the run: ``linear_top1`` (a linear probe on frozen ``h``) and, for a method with
    a classifier of its own (cross-entropy, FixMatch, SESEMI), ``classifier_top1``: that
    classifier's test accuracy at the last evaluation.
    """
    summary = run.summary()
    out: dict[str, Any] = {k: v for k, v in summary.items() if k.startswith("knn_")}
    out["status"] = summary.get("status")
    if summary.get("linear_top1") is not None:
        out["linear_top1"] = summary["linear_top1"]
    evals = run.metrics("eval")
    if evals and evals[-1].get("classifier_top1") is not None:
        out["classifier_top1"] = evals[-1]["classifier_top1"]
    if len(evals) > 1:
        for k, v in evals[-1].items():
            if k.startswith("knn_") and k in evals[0]:
                out[f"{k}_gain"] = v - evals[0][k]
    diags = run.metrics("diagnostics")
    if diags:
        d = diags[-1]
        out.update({k: d[k] for k in ("std_z", "rank_z", "rank_h", "alignment", "uniformity")
                    if k in d})
        out["std_ratio"] = d["std_z"] / d["std_healthy"] if d.get("std_healthy") else None
        if d.get("dim_z"):
            out["rank_z_fraction"] = d["rank_z"] / min(d["n"], d["dim_z"])
        if d.get("rank_h") is not None and d.get("dim_h"):
            out["rank_h_fraction"] = d["rank_h"] / min(d["n"], d["dim_h"])
        out["pos_cos"], out["neg_cos"] = d.get("pos_cos_mean"), d.get("neg_cos_mean")
        trained = [e["rank_z"] for e in diags if e["step"] > 0 and e.get("rank_z") is not None]
        if trained:
            out["rank_z_peak"] = max(trained)
        out["alarm"] = d.get("alarm", {}).get("kind", "none")
        out["alarm_severity"] = d.get("alarm", {}).get("severity", "none")
    steps = run.metrics("step")
    losses = [e["loss"] for e in steps]
    if losses:
        tenth = max(1, len(losses) // 10)
        out["loss_first"] = sum(losses[:tenth]) / tenth
        out["loss_last"] = sum(losses[-tenth:]) / tenth
        out["loss_drop"] = out["loss_first"] - out["loss_last"]
        for key in sorted({k for e in steps for k in e} - set(StepEvent.__annotations__)
                          - {"time"}):
            values = [e[key] for e in steps if isinstance(e.get(key), int | float)]
            if values:
                part = max(1, len(values) // 10)
                out[f"{LOG_PREFIX}{key}_first"] = sum(values[:part]) / part
                out[f"{LOG_PREFIX}{key}_last"] = sum(values[-part:]) / part
    if run.snapshots():
        from engine.eval.clusters import neighbour_purity, silhouette

        snap = run.load_snapshot()
        labelled = snap["labels"] >= 0
        if labelled.sum() > 10:
            out["silhouette"] = silhouette(snap["h"][labelled], snap["labels"][labelled])
            out["neighbour_purity"] = neighbour_purity(snap["h"][labelled],
                                                       snap["labels"][labelled])
            if "z" in snap:  # the projection, where the method has one
                out["silhouette_z"] = silhouette(snap["z"][labelled], snap["labels"][labelled])
                out["neighbour_purity_z"] = neighbour_purity(snap["z"][labelled],
                                                             snap["labels"][labelled])
    return out
