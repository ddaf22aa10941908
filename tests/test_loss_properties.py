"""Properties of engine.losses beyond their values: SupCon's special cases (singleton classes,
unlabelled images, one class), symmetry and permutation invariance, gradients and
stop-gradients, bf16 autocast and edge cases (no valid terms, bad shapes).

Random inputs come from ``tests/fixtures/loss_references.py``, as in ``tests/test_losses.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from engine import losses as L
from tests.fixtures.loss_references import DT, close, gen, randn

# --------------------------------------------------------------------------------------------
# SupCon and SimCLR
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_supcon_with_singleton_classes_equals_info_nce(temperature: float) -> None:
    # One positive per anchor (its other view) and the same 2B-1 candidates as NT-Xent:
    # L_out = L_in = NT-Xent exactly.
    z0, z1 = randn(6, 5, seed=1), randn(6, 5, seed=2)
    z = torch.stack([z0, z1], dim=1)  # (B, 2, D)
    want = L.info_nce(z0, z1, temperature)
    assert close(L.supcon(z, torch.arange(6), temperature), want, 1e-12)
    assert close(L.supcon(z, torch.full((6,), -1), temperature), want, 1e-12)


def test_supcon_unlabelled_are_their_own_class() -> None:
    z = randn(4, 2, 3, seed=7)
    assert close(
        L.supcon(z, torch.tensor([-1, -1, 5, 5])), L.supcon(z, torch.tensor([8, 9, 5, 5])), 1e-12
    )


def test_supcon_base_temperature_scales() -> None:
    z, labels = randn(6, 2, 4), torch.tensor([0, 0, 1, 1, 2, 3])
    plain = L.supcon(z, labels, temperature=0.2)
    assert close(L.supcon(z, labels, temperature=0.2, base_temperature=0.1), 2 * plain, 1e-12)


def test_supcon_single_class_is_finite_with_minimum() -> None:
    z = randn(5, 2, 4).requires_grad_()
    loss = L.supcon(z, torch.zeros(5, dtype=torch.long))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    # All embeddings identical: every candidate is a positive, log(BV - 1).
    same = torch.ones(5, 2, 4, dtype=DT)
    assert close(L.supcon(same, torch.zeros(5, dtype=torch.long)), math.log(9))


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [-1, -1, -1, -1], [7]])
def test_supcon_without_positives_is_zero_with_grad(labels: list[int]) -> None:
    z = randn(len(labels), 3).requires_grad_()  # V = 1: nobody has a positive
    loss = L.supcon(z, torch.tensor(labels))
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert z.grad is not None and bool((z.grad == 0).all())


# --------------------------------------------------------------------------------------------
# Symmetry, gradients, stop-gradient
# --------------------------------------------------------------------------------------------


def test_symmetric_losses() -> None:
    z0, z1 = randn(8, 5, seed=1), randn(8, 5, seed=2)
    same = torch.tensor([1, 0, 0, 1, 0, 1, 1, 0])
    for fn in (L.info_nce, L.barlow_twins, L.vicreg):
        assert close(fn(z0, z1), fn(z1, z0), 1e-10), fn.__name__
    assert close(L.margin_contrastive(z0, z1, same), L.margin_contrastive(z1, z0, same), 1e-10)
    for name, value in L.vicreg_terms(z0, z1).items():
        assert close(value, L.vicreg_terms(z1, z0)[name], 1e-10), name


def test_permutation_invariance_of_batch_losses() -> None:
    z, labels = randn(9, 4, seed=3), torch.tensor([0, 1, 0, -1, 2, 1, 1, 3, 0])
    perm = torch.randperm(9, generator=gen(1))
    for fn in (L.supcon, L.pairwise_margin_contrastive, L.triplet_batch_hard):
        assert close(fn(z, labels), fn(z[perm], labels[perm]), 1e-10), fn.__name__


LABELS = torch.tensor([0, 1, 0, 1, 2, 2, -1, 1])
SAME = torch.tensor([1, 0, 1, 0, 0, 1, 0, 1])

# name -> loss of two (B, D) tensors; both receive gradients unless stop-gradient applies.
PAIR_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "info_nce": lambda a, b: L.info_nce(a, b, 0.2),
    "info_nce_logits": lambda a, b: L.info_nce_logits(a, b, b[:3].flip(1), 0.2),
    "supcon": lambda a, b: L.supcon(torch.stack([a, b], 1), LABELS),
    "negative_cosine": L.negative_cosine,
    "byol_loss": L.byol_loss,
    "barlow_twins": L.barlow_twins,
    "vicreg": L.vicreg,
    "margin_contrastive": lambda a, b: L.margin_contrastive(a, b, SAME, 3.0),
    "pairwise_margin_contrastive": lambda a, b: L.pairwise_margin_contrastive(
        torch.cat([a, b]), LABELS.repeat(2), 3.0
    ),
    "triplet_batch_hard": lambda a, b: L.triplet_batch_hard(torch.cat([a, b]), LABELS.repeat(2)),
    "cross_entropy": lambda a, b: L.cross_entropy(torch.cat([a, b]), LABELS.repeat(2)),
}
STOP_GRAD_SECOND = {"negative_cosine", "byol_loss", "info_nce_logits"}


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
def test_gradient_flow(name: str) -> None:
    a = randn(8, 5, seed=1, dtype=torch.float32).requires_grad_()
    b = randn(8, 5, seed=2, dtype=torch.float32).requires_grad_()
    loss = PAIR_LOSSES[name](a, b)
    assert loss.ndim == 0 and loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    if name in STOP_GRAD_SECOND:
        assert b.grad is None, "the target branch must be detached inside the loss"
    else:
        assert b.grad is not None and torch.isfinite(b.grad).all() and b.grad.abs().sum() > 0


@pytest.mark.parametrize("fn", [L.negative_cosine, L.byol_loss])
def test_stop_gradient_to_target(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    # A shared leaf feeding both arguments: its gradient must equal that of the p branch alone.
    x = randn(6, 4, seed=1).requires_grad_()
    w = randn(4, 4, seed=2)
    fn(x @ w, x).backward()
    shared = x.grad.clone()
    x.grad = None
    fn(x @ w, x.detach()).backward()
    assert torch.allclose(shared, x.grad)
    # And without detach inside the loss the gradients would differ.
    x.grad = None
    (-F.cosine_similarity(x @ w, x, dim=1).mean()).backward()
    assert not torch.allclose(shared, x.grad)


def test_moco_keys_and_queue_get_no_gradient() -> None:
    q = randn(4, 3, seed=1).requires_grad_()
    k = randn(4, 3, seed=2).requires_grad_()
    queue = randn(6, 3, seed=3).requires_grad_()
    L.info_nce_logits(q, k, queue, 0.2).backward()
    assert q.grad is not None and k.grad is None and queue.grad is None


def test_identical_points_give_finite_gradients() -> None:
    z = torch.zeros(4, 3, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    total = (
        L.triplet_batch_hard(z, labels)
        + L.pairwise_margin_contrastive(z, labels)
        + L.margin_contrastive(z[:2], z[2:], torch.tensor([0, 0]))
    )
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(z.grad).all()


# --------------------------------------------------------------------------------------------
# Low precision and edge cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAIR_LOSSES))
def test_bf16_autocast_computes_in_float32(name: str) -> None:
    a = (randn(8, 5, seed=1, dtype=torch.float32) * 4).bfloat16().requires_grad_()
    b = (randn(8, 5, seed=2, dtype=torch.float32) * 4).bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = PAIR_LOSSES[name](a, b)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert a.grad is not None and a.grad.dtype == torch.bfloat16
    assert torch.isfinite(a.grad.float()).all()
    # Same bf16 values in float64 (autocast leaves float64 alone): bf16 arithmetic inside the
    # loss would be off by ~1e-3 relative, float32 arithmetic agrees to ~1e-7.
    exact = PAIR_LOSSES[name](a.detach().double(), b.detach().double())
    assert exact.dtype == torch.float64
    assert close(loss, exact, 1e-5)


def test_cross_entropy_all_unlabelled_is_zero_with_grad() -> None:
    logits = randn(5, 3, dtype=torch.float32).requires_grad_()
    loss = L.cross_entropy(logits, torch.full((5,), -1))
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()
    assert logits.grad is not None and bool((logits.grad == 0).all())
    # Plain PyTorch gives NaN here: this is the case the wrapper exists for.
    assert torch.isnan(F.cross_entropy(logits, torch.full((5,), -1), ignore_index=-1))


def test_cross_entropy_custom_ignore_index() -> None:
    logits, labels = randn(4, 3), torch.tensor([0, 2, 1, 2])
    want = F.cross_entropy(logits[:2], labels[:2])
    assert close(L.cross_entropy(logits, torch.tensor([0, 2, 9, 9]), ignore_index=9), want)


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3], [-1, -1, 0, -1], [4]])
def test_triplet_and_pairwise_without_valid_terms(labels: list[int]) -> None:
    z = randn(len(labels), 3).requires_grad_()
    lab = torch.tensor(labels)
    loss = L.triplet_batch_hard(z, lab)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.isfinite(z.grad).all()
    if sum(x != -1 for x in labels) < 2:  # fewer than two labelled samples: no pair at all
        assert float(L.pairwise_margin_contrastive(z, lab).detach()) == 0.0


def test_info_nce_single_pair_is_zero() -> None:
    assert close(L.info_nce(randn(1, 4, seed=1), randn(1, 4, seed=2)), 0.0)


def test_shape_errors_are_clear() -> None:
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        L.info_nce(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="labels"):
        L.supcon(torch.zeros(4, 2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch of at least 2"):
        L.barlow_twins(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="queue"):
        L.info_nce_logits(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(4, 5), 0.1)
