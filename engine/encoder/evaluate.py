"""Evaluation of a run's checkpoint, on its own data or another data set: kNN top-1 (of h, of z
and of every attribute), the linear probe, a map snapshot and the collapse diagnostics of the
snapshot's embeddings, with the engine's own evaluator (``engine.train.evaluator``).

The result is a new run directory beside the others (``<id>-eval-<data>``), so the Runs page
lists its figures and Explore and Compare draw its map: the trained run against its evaluation
on another data set, for example. Its summary names the run and the step it came from.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import torch

from engine.config import RunConfig
from engine.encoder.load import TrainedEncoder, load_encoder
from engine.train.events import FinishedEvent, StartEvent
from engine.train.recorder import Recorder
from engine.train.store import RunDir, RunStore


def eval_config(enc: TrainedEncoder, data: dict[str, Any]) -> RunConfig:
    """The run's configuration with ``data`` overrides (``{"name": "digits"}``); images are
    resized to the size the encoder was trained at unless ``image_size`` is given."""
    fields = {f.name for f in dataclasses.fields(enc.cfg.data)}
    unknown = set(data) - fields
    if unknown:
        raise ValueError(f"unknown data setting(s) {', '.join(sorted(unknown))}; data has: "
                         f"{', '.join(sorted(fields))}")
    overrides = {f"data.{k}": v for k, v in data.items()}
    if "name" in data and data["name"] != enc.cfg.data.name:
        overrides.setdefault("data.root", data.get("root", ""))
    cfg = enc.cfg.with_overrides(overrides)
    label = enc.cfg.name or f"{enc.cfg.method.name} · {enc.cfg.data.name}"
    return cfg.with_overrides({"name": f"{label} · eval on {cfg.data.name}",
                               "train.epochs": 0, "train.max_seconds": 0})


def evaluate_run(store: RunStore, run_id: str, data: dict[str, Any] | None = None,
                 out: RunStore | None = None) -> tuple[RunDir, dict[str, Any]]:
    """Evaluate the checkpoint of ``run_id`` on its data set with ``data`` overrides; returns
    the evaluation's run directory (in ``out``, default ``store``) and its finished event
    (``knn_*``, ``linear_top1``)."""
    from engine.augment import Augmenter, resolve_views
    from engine.data import load_dataset
    from engine.track.measure import diagnostics_event
    from engine.train.evaluator import Evaluator

    enc = load_encoder(store, run_id)
    cfg = eval_config(enc, data or {})
    ds = load_dataset(cfg.data)
    p = enc.preprocessing
    if ds.channels != p["channels"] or ds.image_size != p["image_size"]:
        raise ValueError(f"run {run_id} takes {p['channels']}-channel images of "
                         f"{p['image_size']} px; {cfg.data.name} gives {ds.channels}-channel "
                         f"images of {ds.image_size} px")
    target = RunDir((out or store).root / f"{run_id}-eval-{cfg.data.name}-{os.urandom(2).hex()}")
    target.create(cfg, owner=str(enc.run.summary().get("owner") or "cli"), status="running")
    target.write_summary({"evaluated_from": run_id, "checkpoint_step": enc.step})
    record = Recorder(target)
    t0 = time.time()
    record(StartEvent(type="start", device="cpu", precision="fp32", resident=True, batch_size=0,
                      steps_per_epoch=0, total_steps=0, max_seconds=0.0, resumed_from=enc.step,
                      parameters=sum(q.numel() for q in enc.method.parameters()),
                      dataset={**ds.describe(), "skipped": ds.skipped}))
    augment = Augmenter(resolve_views(cfg.augment), p["mean"], p["std"])
    evaluator = Evaluator(cfg, ds, ds.train.images, augment, torch.device("cpu"), None)
    evaluation = evaluator.evaluate(enc.method, enc.step)
    for event in evaluation.events:
        record(event)
    snapshot = target.load_snapshot() if target.snapshots() else None
    if snapshot is not None and len(snapshot["h"]) >= 2:
        z = snapshot.get("z", snapshot["h"])
        record(diagnostics_event(enc.step, cfg.method.name, z, None, snapshot["h"]))
    finished: dict[str, Any] = FinishedEvent(
        type="finished", status="finished", reason=f"evaluated the checkpoint of {run_id} "
        f"(step {enc.step}) on {cfg.data.name}", steps=enc.step, epochs=0.0, progress=1.0,
        images_per_s=0.0, train_seconds=0.0, elapsed=time.time() - t0, device="cpu")
    finished.update({k: v for k, v in evaluation.result.items() if k.startswith("knn_")})
    if cfg.eval.linear_probe:
        top1 = evaluator.linear_probe(evaluation.features)
        if top1 is not None:
            finished["linear_top1"] = top1
    record(finished)
    return target, finished
