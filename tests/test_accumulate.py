"""Gradient accumulation: exact for a mean over images, visibly approximate for SimCLR."""

import pytest
import torch

from engine.config import RunConfig
from engine.methods import METHODS, Batch, build_method
from engine.models import build_backbone
from engine.train.accumulate import accumulated_step
from engine.train.loop import Trainer

#: float32 sums in another order: the accumulated gradients may differ from one batch's by
#: rounding only (relative to the gradient's largest entry)
EXACT = 1e-5


class Plain:
    """An augmenter without augmentation: every view is the scaled image (no random draws,
    so one batch and its micro-batches see the same inputs)."""

    def view(self, x, i, generator):  # noqa: ANN001, ANN201
        return x.float() / 255.0 - 0.5


def gradients(method, batch, k):  # noqa: ANN001, ANN201
    method.zero_grad(set_to_none=True)
    if k == 1:
        method.training_step(batch).loss.backward()
    else:
        accumulated_step(method.training_step, batch, k)
    return {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}


def relative_gap(a, b):  # noqa: ANN001, ANN201
    """The largest gap between two gradient sets over the largest gradient entry."""
    scale = max(float(g.abs().max()) for g in a.values())
    return max(float((a[n] - b[n]).abs().max()) for n in a) / scale


def make(name: str, seed: int = 0):  # noqa: ANN201
    torch.manual_seed(seed)
    backbone = build_backbone("small_cnn", 3, 16, 8)
    method = build_method(name, {}, backbone, 4)
    # eval mode: BatchNorm uses its running statistics, so what differs between one batch and
    # its micro-batches is the loss alone (BatchNorm's own per-micro-batch statistics are the
    # other, documented, approximation)
    method.eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (24, 3, 16, 16), dtype=torch.uint8, generator=g)
    y = torch.arange(24) % 4
    return method, Batch(x, y, Plain(), g)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_cross_entropy_accumulates_exactly(k: int) -> None:
    method, batch = make("cross_entropy")
    one = gradients(method, batch, 1)
    acc = gradients(method, batch, k)
    assert set(one) == set(acc) and any(n.startswith("backbone.") for n in one)
    assert relative_gap(one, acc) < EXACT


def test_simclr_micro_batches_see_fewer_negatives() -> None:
    """SimCLR's loss contrasts each image with the others of its batch: two micro-batches of
    12 give other gradients than one batch of 24 (the stated approximation)."""
    method, batch = make("simclr")
    one = gradients(method, batch, 1)
    acc = gradients(method, batch, 2)
    assert relative_gap(one, acc) > 100 * EXACT


def test_methods_state_whether_they_accumulate_exactly() -> None:
    exact = {name for name in METHODS.names() if METHODS.get(name).exact_accumulation}
    assert {"cross_entropy", "rotation", "classifier"} <= exact
    assert not exact & {"simclr", "supcon", "moco", "barlow_twins", "vicreg", "byol", "triplet"}


def test_trainer_takes_the_configured_batch_in_micro_batches() -> None:
    cfg = RunConfig().with_overrides({
        "data.train_size": 256, "data.test_size": 64, "data.image_size": 16, "model.width": 8,
        "method.name": "cross_entropy", "train.batch_size": 64, "train.accumulate": 4,
        "train.epochs": 1, "train.max_seconds": 0, "train.device": "cpu",
        "eval.linear_probe": False, "eval.diagnostics_every_steps": 0})
    trainer = Trainer(cfg)
    seen = []  # the batch size of every training forward pass (evaluations run in eval mode)
    trainer.method.backbone.register_forward_pre_hook(
        lambda module, args: seen.append(len(args[0])) if module.training else None)
    last = list(trainer.events())[-1]
    assert last["status"] == "finished" and last["steps"] == 4
    assert trainer.images_seen == 256
    assert seen == [16] * 16


def test_too_many_micro_batches_is_refused() -> None:
    cfg = RunConfig().with_overrides({"data.train_size": 64, "data.test_size": 16,
                                      "train.batch_size": 8, "train.accumulate": 8,
                                      "train.device": "cpu"})
    with pytest.raises(ValueError, match="train.accumulate"):
        Trainer(cfg)
