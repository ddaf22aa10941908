"""The incremental reader of a run's metrics.jsonl: new events only, torn lines wait, and a
file rewritten by a resume (cut back to its checkpoint) is read again from the top."""

from __future__ import annotations

import json

from engine.config import RunConfig
from engine.train.metrics_reader import MetricsReader
from engine.train.store import RunStore


def test_reads_new_events_waits_for_torn_lines_and_restarts_after_a_rewrite(tmp_path):
    run = RunStore(tmp_path).create(RunConfig())
    reader = MetricsReader(run)
    assert reader.read() == ([], False)
    for step in (1, 2, 3):
        run.append_metric({"type": "step", "step": step, "loss": 1.0 / step})
    events, restarted = reader.read()
    assert [e["step"] for e in events] == [1, 2, 3] and not restarted
    with open(run.path / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "step", "step": 4})[:7])  # a writer killed mid-line
    assert reader.read() == ([], False)

    run.truncate_metrics(2)  # what a resume from a step-2 checkpoint does
    run.append_metric({"type": "step", "step": 3, "loss": 0.4})
    events, restarted = reader.read()
    assert restarted and [e["step"] for e in events] == [1, 2, 3]
    assert events[-1]["loss"] == 0.4
    assert reader.read() == ([], False)
