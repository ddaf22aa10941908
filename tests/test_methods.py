"""The method suite, parametrised over the registry: every registered method trains.

For each method: options are documented, the loss is finite, gradients reach the backbone,
the loss falls on a fixed batch; EMA targets move and take no gradient; stop-gradients hold;
MoCo's queue holds the last K keys.
"""

from __future__ import annotations

import math

import pytest
import torch

from engine.config import RunConfig, validate
from engine.methods import METHODS, build_method_config, describe_method
from engine.methods.ema import cosine_momentum, ema_update, frozen_copy
from engine.methods.rotation import transform
from tests.fixtures.method_batches import B, batch_for, make

ALL = METHODS.names()


def frozen_params(method) -> list[torch.nn.Parameter]:  # noqa: ANN001
    return [p for p in method.parameters() if not p.requires_grad]


# ---- registry and options -----------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_describe_method_and_every_option_has_help(name: str) -> None:
    cls = METHODS.get(name)
    d = describe_method(cls)
    assert d["name"] == name and d["summary"] and d["paper"].startswith("http")
    for opt in d["options"]:
        assert len(opt["help"]) > 15, f"{name}.{opt['name']} needs help text"
        v = opt["default"]
        if opt["choices"]:
            assert v in opt["choices"]
        if isinstance(v, int | float) and not isinstance(v, bool):
            assert opt["low"] is None or v >= opt["low"]
            assert opt["high"] is None or v <= opt["high"]
    build_method_config(cls, {})
    # its train defaults name real TrainConfig fields and make a valid run
    train = {f"train.{key}": value for key, value in d["train_defaults"].items()}
    validate(RunConfig().with_overrides({"method.name": name, **train}))


def test_config_rejects_out_of_range_and_unknown() -> None:
    with pytest.raises(ValueError, match="between"):
        build_method_config(METHODS.get("byol"), {"target_momentum": 2.0})
    with pytest.raises(ValueError, match="no option"):
        build_method_config(METHODS.get("simsiam"), {"stopgrad": False})
    with pytest.raises(ValueError, match="one of"):
        build_method_config(METHODS.get("mim"), {"style": "beit"})


# ---- every method trains ------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_finite_loss_and_gradients_reach_the_backbone(name: str) -> None:
    method = make(name)
    method.train()
    out = method.training_step(batch_for(method))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss), out.loss
    for k, v in out.logs.items():
        assert torch.isfinite(torch.as_tensor(v)).all(), k
    out.loss.backward()
    grads = [p.grad for p in method.backbone.parameters() if p.grad is not None]
    if method.freezes_backbone:  # the second stage on a frozen encoder: its head alone trains
        assert not grads and any(p.grad is not None for p in method.parameters())
        return
    assert grads, f"{name}: no gradient reached the backbone"
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # Frozen targets take no gradient and are left out of the optimiser.
    assert all(p.grad is None for p in frozen_params(method))
    in_groups = {id(p) for g in method.param_groups() for p in g["params"]}
    assert not in_groups & {id(p) for p in frozen_params(method)}


FALL_OVERRIDES = {
    # A fixed batch re-enters the queue every step as its own negatives, so the queue is off
    # here (in-batch negatives); the queue has its own tests below.
    "moco": {"queue_size": 0},
    # A random encoder, frozen in eval mode (BatchNorm's initial running statistics), gives
    # features of scale ~0.03: the article's dropout of 0.5 then hides most of the signal in
    # 30 steps. Its real input is a trained encoder (tests/test_start_weights.py).
    "classifier": {"dropout": 0.0},
}


@pytest.mark.parametrize("name", ALL)
def test_loss_falls_on_a_fixed_batch(name: str) -> None:
    method = make(name, **FALL_OVERRIDES.get(name, {}))
    method.train()
    opt = torch.optim.AdamW([p for g in method.param_groups() for p in g["params"]], lr=2e-3)
    losses = []
    for step in range(30):
        batch = batch_for(method, seed=0)  # same images, same augmentation, same masks
        out = method.training_step(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        method.on_step_end((step + 1) / 30)
        losses.append(float(out.loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 1e-3 * max(1.0, abs(first)), f"{name}: {first:.4f} -> {last:.4f}"


@pytest.mark.parametrize("name", ALL)
def test_embed_gives_h_and_z(name: str) -> None:
    method = make(name)
    method.eval()
    x = batch_for(method).plain()
    out = method.embed(x)
    assert out["h"].shape == (B, method.backbone.out_dim)
    if "z" in out:
        assert out["z"].shape[0] == B


@pytest.mark.parametrize("name", [n for n in ALL if METHODS.get(n).semi_supervised])
def test_semi_supervised_methods_handle_batches_without_labels(name: str) -> None:
    method = make(name)
    frac = method.labelled_fraction()
    assert frac is not None and 0 < frac < 1
    out = method.training_step(batch_for(method, labelled="none"))
    assert torch.isfinite(out.loss)


# ---- EMA targets --------------------------------------------------------------------------

EMA = {"moco": ("key_backbone", "key_projector"), "byol": ("target_backbone", "target_projector")}


@pytest.mark.parametrize("name", sorted(EMA))
def test_ema_target_moves_after_a_step_and_takes_no_gradient(name: str) -> None:
    method = make(name)
    target = [getattr(method, a) for a in EMA[name]]
    online = [method.backbone, method.projector]
    for t, o in zip(target, online, strict=True):
        for pt, po in zip(t.parameters(), o.parameters(), strict=True):
            assert not pt.requires_grad and torch.equal(pt, po)  # starts as a copy
    before = [p.clone() for t in target for p in t.parameters()]
    opt = torch.optim.SGD([p for g in method.param_groups() for p in g["params"]], lr=0.1)
    out = method.training_step(batch_for(method))
    out.loss.backward()
    assert all(p.grad is None for t in target for p in t.parameters())
    opt.step()
    method.on_step_end(0.0)
    after = [p for t in target for p in t.parameters()]
    moved = sum(float((a - b).abs().sum()) for a, b in zip(after, before, strict=True))
    assert moved > 0, "the target did not move after a step"
    # ... but only part of the way: it is an average, not a copy.
    online_params = [p for o in online for p in o.parameters()]
    gap = sum(float((a - o).abs().sum()) for a, o in zip(after, online_params, strict=True))
    assert gap > 0


def test_ema_update_and_cosine_schedule() -> None:
    online = torch.nn.Linear(3, 2)
    target = frozen_copy(online)
    with torch.no_grad():
        online.weight.add_(1.0)
    w_t, w_o = target.weight.clone(), online.weight.clone()
    ema_update(target, online, 0.9)
    assert torch.allclose(target.weight, 0.9 * w_t + 0.1 * w_o)
    ema_update(target, online, 0.0)
    assert torch.equal(target.weight, online.weight)
    assert cosine_momentum(0.99, 0.0) == pytest.approx(0.99)
    assert cosine_momentum(0.99, 0.5) == pytest.approx(0.995)
    assert cosine_momentum(0.99, 1.0) == pytest.approx(1.0)


def test_byol_momentum_rises_on_cosine_and_switches() -> None:
    method = make("byol")
    method.on_step_end(1.0)
    assert method.tau == pytest.approx(1.0)
    zero = make("byol", target_momentum=0.0)
    zero.training_step(batch_for(zero)).loss.backward()
    with torch.no_grad():
        for p in zero.backbone.parameters():
            p.add_(0.1)
    zero.on_step_end(0.5)
    for pt, po in zip(zero.target_backbone.parameters(), zero.backbone.parameters(), strict=True):
        assert torch.equal(pt, po)  # momentum 0: the target is the online network, copied
    no_target = make("byol", ema_target=False, predictor=False)
    assert no_target.target_backbone is None and not frozen_params(no_target)
    assert isinstance(no_target.predictor, torch.nn.Identity)
    assert torch.isfinite(no_target.training_step(batch_for(no_target)).loss)


# ---- stop-gradients -----------------------------------------------------------------------


def test_simsiam_stop_gradient_blocks_the_target_branch() -> None:
    method = make("simsiam")
    p = torch.randn(B, 8, requires_grad=True)
    z = torch.randn(B, 8, requires_grad=True)
    method._distance(p, z).backward()
    assert z.grad is None or float(z.grad.abs().sum()) == 0
    assert float(p.grad.abs().sum()) > 0
    off = make("simsiam", stop_gradient=False)
    z.grad = None
    off._distance(p, z).backward()
    assert float(z.grad.abs().sum()) > 0


def test_simsiam_stop_gradient_changes_the_backbone_gradient() -> None:
    grads = {}
    for sg in (True, False):
        method = make("simsiam", stop_gradient=sg)  # same seed: same weights
        method.train()
        method.training_step(batch_for(method)).loss.backward()
        grads[sg] = torch.cat([p.grad.flatten() for p in method.backbone.parameters()])
    assert not torch.allclose(grads[True], grads[False], rtol=1e-3, atol=1e-6)


def test_simsiam_fixed_predictor_lr_group() -> None:
    method = make("simsiam")
    groups = method.param_groups()
    fixed = [g for g in groups if g.get("fixed_lr")]
    assert len(fixed) == 1
    assert {id(p) for p in fixed[0]["params"]} == {id(p) for p in method.predictor.parameters()}
    n = sum(len(g["params"]) for g in groups)
    assert n == len([p for p in method.parameters() if p.requires_grad])
    assert not any(
        g.get("fixed_lr") for g in make("simsiam", fixed_predictor_lr=False).param_groups()
    )


@pytest.mark.parametrize("name", ["byol", "moco"])
def test_target_outputs_have_no_grad_path(name: str) -> None:
    method = make(name)
    x = batch_for(method).view(1)
    if name == "byol":
        t = method._target(x)
    else:
        t = method._key(x, torch.Generator().manual_seed(0))
    assert not t.requires_grad and t.grad_fn is None


# ---- MoCo queue ---------------------------------------------------------------------------


def test_moco_queue_holds_the_last_k_keys() -> None:
    method = make("moco", queue_size=8, proj_dim=4)
    keys = torch.nn.functional.normalize(torch.randn(20, 4), dim=1)
    for start in range(0, 18, 3):  # batches of 3: 18 keys through a ring of 8
        method.enqueue(keys[start : start + 3])
    assert int(method.queue_ptr) == 18 % 8 and int(method.queue_filled) == 8
    last = keys[10:18]
    held = torch.cat([method.queue[int(method.queue_ptr) :], method.queue[: int(method.queue_ptr)]])
    assert torch.allclose(held, last)  # oldest first, from the pointer on


def test_moco_training_step_enqueues_its_keys() -> None:
    method = make("moco", queue_size=40, symmetric=False)
    method.train()
    before = method.queue.clone()
    method.training_step(batch_for(method))
    assert int(method.queue_ptr) == B and int(method.queue_filled) == B
    assert not torch.allclose(method.queue[:B], before[:B])
    assert torch.equal(method.queue[B:], before[B:])
    assert torch.allclose(method.queue[:B].norm(dim=1), torch.ones(B))
    sym = make("moco", queue_size=40)
    sym.train()
    sym.training_step(batch_for(sym))
    assert int(sym.queue_ptr) == 2 * B


def test_moco_shuffle_bn_keys_match_unshuffled_order() -> None:
    method = make("moco", bn_groups=4)
    method.eval()  # running statistics: the result must not depend on the permutation
    x = batch_for(method).plain()
    k = method._key(x, torch.Generator().manual_seed(0))
    ref = torch.nn.functional.normalize(method.key_projector(method.key_backbone(x)), dim=1)
    assert torch.allclose(k, ref, atol=1e-5)


def test_moco_query_statistics_come_from_its_own_slice() -> None:
    """Shuffle-BN: in training mode a query is normalised by its slice of the batch only."""
    method = make("moco", bn_groups=4)
    method.train()
    x = batch_for(method).plain()  # (16, ...): slices of 4 images
    q = method._query(x)
    x2 = x.clone()
    x2[-1] = -x2[-1]  # an image of the last slice changes
    q2 = method._query(x2)
    assert torch.allclose(q[:12], q2[:12], atol=1e-6)  # the first three slices do not notice
    assert not torch.allclose(q[12:15], q2[12:15], atol=1e-3)  # the last slice's others do


# ---- pieces -------------------------------------------------------------------------------


def test_rotation_and_flip_transforms() -> None:
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3)
    kinds = torch.tensor([1, 5])
    out = transform(x, kinds, flips=True)
    assert torch.equal(out[0], torch.rot90(x[0], 1, dims=(1, 2)))
    assert torch.equal(out[1], x[1].flip(1))
    helps = [o["help"] for o in describe_method(METHODS.get("rotation"))["options"]]
    assert any("orientation" in h and "shapes" in h for h in helps)


@pytest.mark.parametrize("all_rotations", [False, True])
def test_rotation_with_flips_is_a_six_way_task(all_rotations: bool) -> None:
    method = make("rotation", flips=True, all_rotations=all_rotations)
    assert method.head[-1].out_features == 6
    batch = batch_for(method)
    seen = []
    method.head.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    assert torch.isfinite(method.training_step(batch).loss)
    assert seen == [(B * (6 if all_rotations else 1), 6)]
