"""A disk that fills in the middle of a run: the run fails and says so, what it wrote before
stays, and the next run trains. The disk is the kernel's ``/dev/full``, which answers every
write with ENOSPC ("No space left on device"), put in place of the run's metrics file."""

import errno
import json
import os
import time
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.train.runner import Runner, run_foreground
from engine.train.store import RunStore
from tests.fixtures.tiny_runs import TINY

FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not FULL.exists(), reason="this system has no /dev/full")


def test_dev_full_is_a_full_disk() -> None:
    with pytest.raises(OSError) as caught, open(FULL, "a") as f:  # noqa: PTH123
        f.write("x")
        f.flush()
    assert caught.value.errno == errno.ENOSPC


def test_a_full_disk_mid_run_fails_it_with_the_reason_and_keeps_what_was_written(
        tmp_path: Path) -> None:
    cfg = RunConfig().with_overrides({**TINY, "train.epochs": 1000, "train.max_seconds": 120})
    store = RunStore(tmp_path)
    run = store.create(cfg)
    runner = Runner(cfg, run).start()
    metrics = run.path / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and '"type": "step"' not in (
            metrics.read_text() if metrics.exists() else ""):
        time.sleep(0.05)
    written = metrics.read_text()
    assert '"type": "step"' in written, "the run never stepped"
    os.replace(metrics, run.path / "metrics.before.jsonl")  # what the disk held
    metrics.symlink_to(FULL)  # from now on the disk is full

    runner.join(60)
    summary = run.summary()
    assert summary["status"] == "failed"
    assert summary["error"].startswith("the disk is full (") and "free space" in summary["error"]
    assert summary["resumable"] is False
    before = (run.path / "metrics.before.jsonl").read_text().splitlines()
    assert before[: len(written.splitlines())] == written.splitlines()
    assert all(json.loads(line) for line in before)  # no torn line

    # the process goes on: the next run, on a disk with room, trains to the end
    again, last = run_foreground(RunConfig().with_overrides({**TINY, "train.epochs": 1}), store)
    assert last["type"] == "finished" and again.summary()["status"] == "finished"
