"""Tests for engine.train.sweep: the cells of a leave-one-out sweep and of the pair grid, their
shared seed and budget, submission through the registry's queue within the participant's cap,
and the results table (runners that train nothing: no training here)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from engine.config import RunConfig
from engine.train.registry import Actor, Limits, RunRegistry
from engine.train.store import RunStore
from engine.train.sweep import Sweep, cell_config, plan, sweep_ops
from tests.fixtures.fake_runners import Factory
from tests.fixtures.tiny_runs import TINIER

BASE = RunConfig().with_overrides({**TINIER, "data.name": "shapes", "method.name": "simclr",
                                   "augment.preset": "simclr", "train.device": "cpu",
                                   "seed": 7, "train.max_seconds": 30})
SIMCLR_OPS = ["random_resized_crop", "horizontal_flip", "color_jitter", "grayscale"]


def test_leave_one_out_and_pair_cells() -> None:
    assert sweep_ops(BASE) == SIMCLR_OPS
    loo = plan(BASE, "leave_one_out")
    assert [c.label for c in loo] == ["all ops", *[f"without {o}" for o in SIMCLR_OPS]]
    assert all(len(c.kept) == 3 and c.dropped == [c.row] for c in loo[1:])
    pairs = plan(BASE, "pairs")
    assert len(pairs) == 10  # 4 alone + 6 pairs
    diag = [c for c in pairs if c.row == c.col]
    assert [c.kept for c in diag] == [[o] for o in SIMCLR_OPS]
    two = next(c for c in pairs if c.label == "random_resized_crop + color_jitter")
    assert sorted(two.dropped) == ["grayscale", "horizontal_flip"]


def test_cells_share_seed_and_budget_and_differ_only_in_disabled_ops() -> None:
    configs = [cell_config(BASE, c, budget_seconds=45) for c in plan(BASE, "pairs")]
    for cfg in configs:
        assert cfg.seed == 7 and cfg.train.max_seconds == 45
        assert dataclasses.replace(cfg.train) == configs[0].train
        assert cfg.data == BASE.data and cfg.model == BASE.model and cfg.method == BASE.method
        assert cfg.augment.preset == "simclr"
    disabled = {tuple(sorted(c.augment.disable)) for c in configs}
    assert len(disabled) == len(configs)  # every cell switches a different set off


@pytest.mark.parametrize(
    ("mode", "ops", "message"),
    [
        ("grid", None, "unknown sweep mode 'grid'"),
        ("pairs", ["solarize", "grayscale"], "does not apply solarize"),
        ("leave_one_out", ["grayscale"], "at least two ops"),
    ],
)
def test_bad_sweeps_say_what(mode: str, ops: list[str] | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan(BASE, mode, ops)


def test_sweep_is_queued_within_the_cap_and_its_table_fills_in(tmp_path) -> None:  # noqa: ANN001
    store = RunStore(tmp_path)
    factory = Factory()
    reg = RunRegistry(store, Limits(max_runs_cpu=1, max_queued=2), factory, [])
    alice = Actor("alice")
    sweep = Sweep.new(BASE, "leave_one_out", budget_seconds=20, owner="alice")
    sweep.save(store.root)
    assert sweep.pump(reg, alice) == 3  # one runs, two wait: the cap refuses the fourth
    assert [c.run_id != "" for c in sweep.cells] == [True, True, True, False, False]
    while sweep.pending() or not sweep.done(store):
        for runner in list(factory.made):
            runner.finish()
        sweep.pump(reg, alice)
        time.sleep(0.02)
    configs = [runner.cfg for runner in factory.made]
    assert len(configs) == 5
    assert {(c.seed, c.train.max_seconds, c.train.epochs, c.train.batch_size) for c in configs} \
        == {(7, 20.0, BASE.train.epochs, BASE.train.batch_size)}
    for i, cell in enumerate(sweep.cells):
        store.get(cell.run_id).write_summary({"knn_top1": 0.1 * i})
    table = Sweep.load(store.root, sweep.id).table(store)
    assert [r["status"] for r in table] == ["finished"] * 5
    assert [r["knn"] for r in table] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert Sweep.list(store.root) == [sweep.id]
    assert not any(p.name.startswith("_") for p in (r.path for r in store.list()))
    reg.stop_all()


def test_loading_a_missing_sweep_names_it(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(FileNotFoundError, match="no sweep 'nope'"):
        Sweep.load(tmp_path, "nope")


def test_feed_submits_every_cell_in_the_background(tmp_path) -> None:  # noqa: ANN001
    from engine.train.sweep import feed

    store = RunStore(tmp_path)
    factory = Factory(lifetime=0.05)
    reg = RunRegistry(store, Limits(max_runs_cpu=1, max_queued=1), factory, [])
    sweep = Sweep.new(BASE, "pairs", ops=["random_resized_crop", "color_jitter"],
                      budget_seconds=10)
    sweep.save(store.root)
    feed(sweep, reg, Actor("bob"), poll=0.02).join(30)
    assert not sweep.pending()  # all submitted; the last may still wait in the queue
    deadline = time.monotonic() + 30
    while not sweep.done(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["status"] for r in sweep.table(store)] == ["finished"] * 3
    assert len(factory.made) == 3
    reg.stop_all()


def test_command_line_sweep_runs_every_cell_and_prints_the_grid(tmp_path, capsys) -> None:  # noqa: ANN001
    from engine.cli import main

    sets = [f"{k}={v}" for k, v in {**TINIER, "data.name": "shapes", "train.device": "cpu",
                                    "eval.diagnostics_every_steps": 0}.items()]
    argv = ["sweep", "--mode", "pairs", "--ops", "random_resized_crop", "color_jitter",
            "--budget", "1", "--runs-dir", str(tmp_path), "--quiet"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3 runs, 1 s each, seed 0" in out
    grid = out.strip().splitlines()[-2:]
    assert grid[0].startswith("random_resized_crop") and grid[1].startswith("color_jitter")
    (sweep_id,) = Sweep.list(tmp_path)
    cells = Sweep.load(tmp_path, sweep_id).cells
    assert all(RunStore(tmp_path).get(c.run_id).status() == "finished" for c in cells)
