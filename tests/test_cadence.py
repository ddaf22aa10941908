"""When a run evaluates, probes and checkpoints (``engine.train.cadence``)."""

from __future__ import annotations

from engine.config import RunConfig
from engine.train.cadence import Cadence


def cadence(initial_pending: bool = False, **overrides: object) -> Cadence:
    cfg = RunConfig().with_overrides({"eval.every_seconds": 10, "train.checkpoint_every_seconds": 0,
                                      **overrides})
    return Cadence(cfg, steps_per_epoch=50, seconds=2.0, initial_pending=initial_pending)


def test_evaluation_every_interval_stretched_to_nine_times_its_own_cost():
    due = cadence()
    assert not due.evaluation_due(7, 11.9) and due.evaluation_due(8, 12.0)  # 2 s + 10 s
    due.evaluated(12.5, eval_seconds=0.5)  # cheap: the interval stands
    assert not due.evaluation_due(9, 22.4) and due.evaluation_due(10, 22.5)
    due.evaluated(23.0, eval_seconds=3.0)  # costly: at least 27 s of training before the next
    assert not due.evaluation_due(11, 49.9) and due.evaluation_due(12, 50.0)


def test_nothing_is_due_on_time_before_the_step_0_evaluation():
    due = cadence(initial_pending=True)
    assert not due.evaluation_due(1, 1e6)
    due.evaluated(4.0, eval_seconds=0.1)
    assert due.evaluation_due(2, 14.0)


def test_evaluation_every_fraction_of_an_epoch_as_well():
    due = cadence(**{"eval.every_epochs": 0.5, "eval.every_seconds": 1e9})
    assert [s for s in range(1, 101) if due.evaluation_due(s, 0.0)] == [25, 50, 75, 100]


def test_diagnostics_and_checkpoints_by_steps():
    due = cadence(**{"eval.diagnostics_every_steps": 20, "train.checkpoint_every_steps": 30})
    assert [s for s in range(1, 61) if due.diagnostics_due(s)] == [20, 40, 60]
    assert [s for s in range(1, 61) if due.checkpoint_due(s)] == [30, 60]
    assert not any(cadence(**{"eval.diagnostics_every_steps": 0}).diagnostics_due(s)
                   for s in range(1, 100))


def test_checkpoint_after_its_seconds_of_wall_time(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("engine.train.cadence.time.perf_counter", lambda: clock[0])
    due = cadence(**{"train.checkpoint_every_seconds": 60})
    clock[0] = 159.0
    assert not due.checkpoint_due(5)
    clock[0] = 160.0
    assert due.checkpoint_due(6)
    due.checkpointed()
    assert not due.checkpoint_due(7)
