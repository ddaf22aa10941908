"""Several processes train like one: for every method, one step by 2 processes (gloo, CPU) on
half a batch each gives the loss and the gradients of one process on the whole batch.

How the comparison is made equal (``tests/fixtures/distributed_steps.py``): views are fixed
per image, batch norms are synchronised (MoCo: the same split into ``bn_groups`` slices on both
sides), and per-image random draws are made the same. The loss compared is the mean of the
processes' losses (a gathered loss is the global one on each; a mean over images is each
process's half); gradients are DDP's average, on rank 0 and rank 1.

That the test can fail: for every method whose loss gathers the batch (``GATHERED``), the
processes also run the step with that gather replaced by the identity (each process then sees
its own half only: for SimCLR the bug of solo-learn issue 229), and
``test_without_the_gather_the_step_differs`` asserts that the equivalence check rejects it.
MoCo's gather of keys into the queue is checked by the queue test (a queue of one process's
keys differs from the one-process queue).
"""

from __future__ import annotations

import pytest
import torch

from engine import distributed
from engine.methods import METHODS
from tests.fixtures.distributed_steps import DRAWS, GATHERED, one_process, run_processes

#: float32 tolerance: reductions run in another order on two processes (SyncBN sums per-process
#: statistics, DDP averages two halves). Gradients: |g2 - g1| <= RTOL |g1| + ATOL max |g1| over
#: all parameters (a bias followed by a normalisation has a zero gradient, in float noise). The
#: largest difference measured was 1.3e-5 of max |g1| (mim); without the gather 0.36 (simclr).
RTOL, ATOL = 1e-4, 1e-4


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_processes(tmp_path_factory.mktemp("ddp"))


def assert_same_step(ref: dict, ranks: list[dict]) -> None:
    loss = sum(r["loss"] for r in ranks) / len(ranks)
    assert loss == pytest.approx(ref["loss"], rel=RTOL, abs=ATOL)
    scale = max(g.abs().max().item() for g in ref["grads"].values())
    for r in ranks:
        assert r["grads"].keys() == ref["grads"].keys()
        for name, g in ref["grads"].items():
            torch.testing.assert_close(r["grads"][name], g, rtol=RTOL, atol=ATOL * scale,
                                       msg=name)


@pytest.mark.parametrize("name", METHODS.names())
def test_two_processes_give_the_one_process_step(name, ranks):
    ref = one_process(name)
    # a method that draws per-image randomness must be listed so the ranks draw the same
    assert ref["draws"] == (name in DRAWS or name == "moco"), "update DRAWS"
    assert not ref["global_draws"], "give the method options without global draws in PARAMS"
    assert_same_step(ref, [r[name] for r in ranks])


def test_moco_queue_holds_both_processes_keys_in_order(ranks):
    ref = one_process("moco")
    for r in ranks:
        # symmetric MoCo enqueues the keys of view 1 then view 0, each in image order: rank
        # 0's images then rank 1's, exactly the one-process queue
        torch.testing.assert_close(r["moco"]["queue"], ref["queue"], rtol=RTOL, atol=ATOL)
    assert not torch.equal(ref["queue"][:32], torch.zeros_like(ref["queue"][:32]))


@pytest.mark.parametrize("name", GATHERED)
def test_without_the_gather_the_step_differs(name, ranks):
    ref = one_process(name)
    without = [r[f"{name}_without_gather"] for r in ranks]
    with pytest.raises(AssertionError):
        assert_same_step(ref, without)
    if name == "simclr":  # each process contrasts its own half: 2b - 2 negatives, not 2B - 2
        assert abs(without[0]["loss"] - ref["loss"]) > 0.1


def test_one_process_never_enters_distributed_code(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.launched()
    assert distributed.current() is None and distributed.world_size() == 1
    x = torch.randn(4, 3, requires_grad=True)
    assert distributed.gather(x) is x
    assert not torch.distributed.is_initialized()


@pytest.mark.parametrize("name", ["simclr", "moco", "byol"])
def test_a_one_process_run_never_calls_torch_distributed(monkeypatch, name):
    from engine.config import RunConfig
    from engine.train.loop import Trainer

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("torch.distributed called by a one-process run")

    for fn in ("init_process_group", "all_gather", "all_reduce", "broadcast", "barrier"):
        monkeypatch.setattr(torch.distributed, fn, refuse)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cfg = RunConfig().with_overrides({
        "method.name": name, "data.train_size": 64, "data.test_size": 32,
        "train.batch_size": 16, "train.epochs": 1, "train.max_seconds": 0, "train.device": "cpu",
        "eval.knn_train_size": 32, "eval.snapshot_size": 0, "eval.linear_probe": False,
        "eval.diagnostics_every_steps": 0,
    })
    trainer = Trainer(cfg)
    assert trainer.dist is None and trainer.world == 1
    assert trainer._step_fn == trainer.method.training_step  # no DDP, no SyncBatchNorm
    last = list(trainer.events())[-1]
    assert last["status"] == "finished" and last["steps"] == 4
