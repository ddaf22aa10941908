import io
import json
import os
import subprocess
import threading
import time
import zipfile

import numpy as np
import pytest

from engine.config import RunConfig
from engine.train.events import EventLog
from engine.train.store import RunDir, RunStore


def test_run_directory_round_trip(tmp_path):
    store = RunStore(tmp_path)
    cfg = RunConfig().with_overrides({"method.name": "supcon"})
    run = store.create(cfg, owner="ada")
    assert run.config() == cfg
    summary = run.summary()
    assert summary["status"] == "queued" and summary["owner"] == "ada"
    assert summary["pid"] == os.getpid() and summary["heartbeat"] > time.time() - 5
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


@pytest.mark.parametrize("bad", ["..", "../x", "/etc", "a/b", "", ".", "a..b", ".hidden",
                                 "x/../y", "runs/../../etc"])
def test_store_refuses_what_is_not_a_run_id_and_deletes_nothing(tmp_path, bad):
    root = tmp_path / "runs"
    store = RunStore(root)
    run = store.create(RunConfig())
    sibling = tmp_path / "x"  # what "../x" would name
    sibling.mkdir()
    (sibling / "config.json").write_text("{}")
    (tmp_path / "keep.txt").write_text("keep")
    for act in (store.get, store.delete):
        with pytest.raises(ValueError, match="not a run id"):
            act(bad)
    assert (sibling / "config.json").exists() and (tmp_path / "keep.txt").exists()
    assert (run.path / "config.json").exists()


def test_store_refuses_a_link_out_of_the_root(tmp_path):
    store = RunStore(tmp_path / "runs")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (store.root / "link").symlink_to(outside)
    with pytest.raises(ValueError, match="not a run id"):
        store.delete("link")
    assert (outside / "config.json").exists()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_status_tells_live_runs_from_orphans_and_reconcile_writes_it_down(tmp_path):
    store = RunStore(tmp_path)
    live = store.create(RunConfig(), status="running")
    dead = store.create(RunConfig(), status="running")
    dead.write_summary({"pid": dead_pid()})
    silent = store.create(RunConfig(), status="paused")
    silent.write_summary({"heartbeat": time.time() - 60})
    done = store.create(RunConfig(), status="running")
    done.write_summary({"status": "finished"})
    dead.save_checkpoint({"step": 3})
    assert live.status() == "running" and done.status() == "finished"
    assert dead.status() == "interrupted" and silent.status() == "interrupted"
    assert sorted(store.reconcile()) == sorted([dead.id, silent.id])
    assert dead.summary()["status"] == "interrupted" and dead.summary()["resumable"] is True
    assert silent.summary()["resumable"] is False and silent.summary()["reason"]
    assert live.summary()["status"] == "running"
    assert store.reconcile() == []
    assert live.beat() and not done.beat()


def test_truncate_metrics_cuts_back_to_a_step(tmp_path):
    run = RunStore(tmp_path).create(RunConfig())
    for event in ({"type": "status", "status": "loading"}, {"type": "start"},
                  {"type": "step", "step": 1}, {"type": "eval", "step": 0},
                  {"type": "step", "step": 5}, {"type": "eval", "step": 5},
                  {"type": "step", "step": 9}, {"type": "status", "status": "paused"},
                  {"type": "finished", "steps": 9}):
        run.append_metric(event)
    for step in (0, 5, 9):
        run.save_snapshot(step, {"h": np.zeros((2, 2), np.float32)})
        (run.path / "maps").mkdir(exist_ok=True)
        (run.path / "maps" / f"umap_step_{step:07d}_h_0123abcd.npy").write_bytes(b"")
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"type": "st')
    run.truncate_metrics(5)
    assert [(e["type"], e.get("step")) for e in run.metrics()] == [
        ("status", None), ("start", None), ("step", 1), ("eval", 0), ("step", 5), ("eval", 5)]
    assert run.snapshots() == [0, 5]
    assert sorted(f.name[:17] for f in (run.path / "maps").iterdir()) == [
        "umap_step_0000000", "umap_step_0000005"]


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


def test_rundir_id():
    assert RunDir(__import__("pathlib").Path("/x/abc")).id == "abc"


def test_a_run_id_and_its_label_name_the_same_second(tmp_path, monkeypatch):
    """The id's time and the summary's creation time are one moment, so the label a person reads
    (``... · 14:02:37 · queued``) names the second the id names, even across a second boundary."""
    from app.run_info import label

    clock = iter([1_800_000_000.999, 1_800_000_001.2, 1_800_000_001.4])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    run = RunStore(tmp_path).create(RunConfig(), owner="ada")
    monkeypatch.undo()
    stamp = run.id[9:15]
    assert f"{stamp[:2]}:{stamp[2:4]}:{stamp[4:]}" in label(run)


def test_the_stamp_changes_when_a_run_is_made_or_deleted_not_when_one_writes(tmp_path):
    """A page's run picker is redrawn when the stamp moves (``app.run_info.list_outdated``)."""
    store = RunStore(tmp_path)
    before = store.stamp()
    time.sleep(0.01)
    run = store.create(RunConfig())
    made = store.stamp()
    assert made != before
    time.sleep(0.01)
    run.write_summary({"status": "running"})
    run.append_metric({"type": "step", "step": 1, "loss": 1.0})
    assert store.stamp() == made
    store.delete(run.id)
    assert store.stamp() != made


def test_two_runs_that_draw_the_same_id_both_get_a_directory(tmp_path, monkeypatch):
    """Ids are the second plus a 16-bit random suffix: sixty runs made in one second (a room
    pressing Train) draw the same one about once in forty. The second draw must not fail the run."""
    from engine.train import store as store_module

    draws = iter(["20270115-080000-simclr-shapes-abcd", "20270115-080000-simclr-shapes-abcd",
                  "20270115-080000-simclr-shapes-1234"])
    monkeypatch.setattr(store_module, "new_run_id", lambda cfg, created: next(draws))
    store = RunStore(tmp_path)
    first, second = store.create(RunConfig()), store.create(RunConfig())
    assert first.id.endswith("-abcd") and second.id.endswith("-1234")
    assert (first.path / "config.json").exists() and (second.path / "config.json").exists()
