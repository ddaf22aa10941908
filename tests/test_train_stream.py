"""The streamed data path: a train split larger than the device's memory is streamed from host
memory, one batch ahead, and trains exactly as the resident path does."""

from itertools import islice

import torch

from engine.config import RunConfig
from engine.data import load_dataset
from engine.train.loop import Trainer
from engine.train.prefetch import stream_batches
from tests.fixtures.tiny_runs import TINIER

TINY = {**TINIER, "train.epochs": 1}


def test_a_tiny_memory_limit_selects_the_streamed_path_with_the_same_batches():
    cfg = RunConfig().with_overrides(TINY)
    ds = load_dataset(cfg.data)
    resident = Trainer(cfg, ds)
    streamed = Trainer(cfg, ds, memory_limit=1024)  # bytes: far less than the split
    assert resident.resident and not streamed.resident
    n = 2 * resident.steps_per_epoch + 1  # across an epoch boundary
    pairs = zip(islice(resident.batches(), n), islice(streamed.batches(), n), strict=True)
    for (i0, x0), (i1, x1) in pairs:
        assert torch.equal(i0, i1)
        assert x1.dtype == torch.uint8 and x1.device == streamed.device
        assert torch.equal(x0, x1)


def test_the_streamed_path_trains_like_the_resident_one():
    cfg = RunConfig().with_overrides(TINY)
    ds = load_dataset(cfg.data)
    losses = {}
    for name, limit in (("resident", None), ("streamed", 1024)):
        trainer = Trainer(cfg, ds, memory_limit=limit)
        losses[name] = [
            float(trainer.train_step(idx, trainer.base_lr, 0.0, x).loss.detach())
            for idx, x in islice(trainer.batches(), 5)
        ]
    assert torch.allclose(torch.tensor(losses["resident"]), torch.tensor(losses["streamed"]))

    events = list(Trainer(cfg, ds, memory_limit=1024).events())
    assert events[0]["type"] == "start" and events[0]["resident"] is False
    last = events[-1]
    assert last["type"] == "finished" and last["status"] == "finished", last
    assert last["steps"] == 256 // 32 and 0.0 <= last["knn_top1"] <= 1.0
    assert any(e["type"] == "snapshot" for e in events)


def test_the_next_batch_is_gathered_before_the_current_one_is_handed_out():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    calls = []

    def gather(idx):
        calls.append(idx)
        return images[idx]

    order = [torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])]
    batches = stream_batches(gather, iter(order))
    idx, x = next(batches)
    assert torch.equal(idx, order[0]) and x.flatten().tolist() == [0, 1]
    assert len(calls) == 2  # batch 1 is already on its way while batch 0 trains
    assert [i.tolist() for i, _ in batches] == [[2, 3], [4, 5]]
