import io
import json
import threading
import zipfile

import numpy as np

from engine.config import RunConfig
from engine.train.events import EventLog
from engine.train.store import RunDir, RunStore


def test_run_directory_round_trip(tmp_path):
    store = RunStore(tmp_path)
    cfg = RunConfig().with_overrides({"method.name": "supcon"})
    run = store.create(cfg)
    assert run.config() == cfg
    assert run.summary()["status"] == "running"
    run.append_metric({"type": "step", "step": 1, "loss": 2.0})
    run.append_metric({"type": "eval", "step": 1, "knn_top1": 0.5})
    assert [m["step"] for m in run.metrics("step")] == [1]
    run.save_snapshot(7, {"h": np.ones((3, 2), np.float32), "labels": np.arange(3)})
    assert run.snapshots() == [7]
    snap = run.load_snapshot()
    assert snap["h"].shape == (3, 2) and list(snap["labels"]) == [0, 1, 2]
    run.write_summary({"status": "finished", "knn_top1": 0.5})
    assert run.summary()["status"] == "finished"
    # A restarted process sees the same run.
    assert [r.id for r in RunStore(tmp_path).list()] == [run.id]
    names = zipfile.ZipFile(io.BytesIO(run.zip_bytes())).namelist()
    assert f"{run.id}/config.json" in names and f"{run.id}/metrics.jsonl" in names


def test_torn_metrics_line_is_skipped(tmp_path):
    run = RunStore(tmp_path).create(RunConfig())
    run.append_metric({"type": "step", "step": 1})
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"type": "step", "st')  # the process died mid-write
    assert [m["step"] for m in run.metrics()] == [1]


def test_atomic_writes_leave_no_temp_files(tmp_path):
    run = RunStore(tmp_path).create(RunConfig())
    for i in range(5):
        run.write_summary({"i": i})
    assert json.loads((run.path / "summary.json").read_text())["i"] == 4
    assert not list(run.path.glob(".*tmp"))


def test_store_rejects_path_tricks(tmp_path):
    store = RunStore(tmp_path)
    for bad in ("../etc", "a/b", ""):
        try:
            store.get(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")


def test_event_log_readers_have_independent_cursors():
    log = EventLog()
    writers = [
        threading.Thread(target=lambda k=k: [log.append({"w": k, "i": i}) for i in range(200)])
        for k in range(4)
    ]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    a, ca = log.read(0)
    b1, cb = log.read(0)
    assert len(a) == len(b1) == 800 and ca == cb == 800
    for k in range(4):  # each writer's events stay in order
        assert [e["i"] for e in a if e["w"] == k] == list(range(200))
    log.append({"w": 9})
    new, _ = log.read(ca)
    assert new == [{"w": 9}]
    log.put("snapshot", {"step": 3})
    assert log.get("snapshot") == {"step": 3}


def test_rundir_id():
    assert RunDir(__import__("pathlib").Path("/x/abc")).id == "abc"
