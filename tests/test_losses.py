"""What each loss of engine.losses computes: agreement with loop-based references on random
inputs, and analytic values on inputs whose loss is known in closed form.

The references (``tests/fixtures/loss_references.py``) are written from the papers' formulas
with explicit Python loops over anchors and pairs, independently of the vectorised code under
test.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from engine import losses as L
from engine.losses import metric as metric_losses
from tests.fixtures.loss_references import (
    DT,
    close,
    cos,
    dist,
    randn,
    ref_barlow,
    ref_margin_pair,
    ref_moco,
    ref_nt_xent,
    ref_pairwise_margin,
    ref_supcon,
    ref_triplet,
    ref_triplet_all,
    ref_vicreg,
)

# --------------------------------------------------------------------------------------------
# Agreement with the references on random inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_info_nce_matches_reference(temperature: float) -> None:
    z0, z1 = randn(6, 5, seed=1), randn(6, 5, seed=2)
    assert close(L.info_nce(z0, z1, temperature), ref_nt_xent(z0, z1, temperature))


@pytest.mark.parametrize("with_queue", [True, False])
def test_moco_matches_reference(with_queue: bool) -> None:
    q, k = randn(5, 4, seed=1), randn(5, 4, seed=2)
    queue = randn(7, 4, seed=3) if with_queue else None
    loss = L.info_nce_logits(q, k, queue, 0.2)
    assert close(loss, ref_moco(q, k, queue, 0.2))
    logits, labels = L.moco_logits(q, k, queue, 0.2)
    assert logits.shape == (5, 8 if with_queue else 5)
    assert labels.dtype == torch.long and bool((labels == 0).all())


@pytest.mark.parametrize("base_t", [None, 0.07])
@pytest.mark.parametrize("views", [1, 2, 3])
def test_supcon_matches_reference(views: int, base_t: float | None) -> None:
    labels = [0, 1, 0, 2, -1, 1, 3, -1]  # class 2 and 3 are singletons, two unlabelled
    z = randn(8, views, 6, seed=views)
    got = L.supcon(z, torch.tensor(labels), temperature=0.1, base_temperature=base_t)
    assert close(got, ref_supcon(z, labels, 0.1, base_t))


def test_supcon_accepts_flat_input() -> None:
    z, labels = randn(8, 5), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    assert close(L.supcon(z, labels), L.supcon(z[:, None, :], labels), 1e-12)


def test_negative_cosine_and_byol_match_reference() -> None:
    p, z = randn(6, 5, seed=1), randn(6, 5, seed=2)
    cosines = [cos(p[i], z[i]) for i in range(6)]
    assert close(L.negative_cosine(p, z), -sum(cosines) / 6)
    assert close(L.byol_loss(p, z), sum(2 - 2 * c for c in cosines) / 6)
    # BYOL's form in the paper: squared distance of the L2-normalised vectors.
    nmse = (F.normalize(p, dim=1) - F.normalize(z, dim=1)).pow(2).sum(1).mean()
    assert close(L.byol_loss(p, z), nmse)


@pytest.mark.parametrize("lam", [5e-3, 0.5])
def test_barlow_twins_matches_reference(lam: float) -> None:
    z0, z1 = randn(7, 4, seed=1), randn(7, 4, seed=2) * 3 + 1
    assert close(L.barlow_twins(z0, z1, lam), ref_barlow(z0, z1, lam))


def test_vicreg_matches_reference() -> None:
    z0, z1 = randn(6, 4, seed=1) * 0.5, randn(6, 4, seed=2) * 2
    got, want = L.vicreg_terms(z0, z1), ref_vicreg(z0, z1)
    assert set(got) == {"invariance", "variance", "covariance"}
    for name in want:
        assert close(got[name], want[name]), name
    total = 25 * want["invariance"] + 25 * want["variance"] + want["covariance"]
    assert close(L.vicreg(z0, z1), total)
    weighted = 1.0 * want["invariance"] + 2.0 * want["variance"] + 3.0 * want["covariance"]
    assert close(L.vicreg(z0, z1, 1.0, 2.0, 3.0), weighted)


def test_margin_contrastive_matches_reference() -> None:
    z0, z1 = randn(8, 3, seed=1), randn(8, 3, seed=2)
    same = torch.tensor([1, 0, 1, 0, 0, 1, 0, 0])
    want = sum(ref_margin_pair(dist(z0[i], z1[i]), bool(same[i]), 2.0) for i in range(8)) / 8
    assert close(L.margin_contrastive(z0, z1, same, margin=2.0), want)
    assert close(L.margin_contrastive(z0, z1, same.bool(), margin=2.0), want)


def test_pairwise_margin_contrastive_matches_reference() -> None:
    labels = [0, 1, 0, -1, 2, 1, 1, -1, 0]
    z = randn(9, 3, seed=4)
    got = L.pairwise_margin_contrastive(z, torch.tensor(labels), margin=2.5)
    assert close(got, ref_pairwise_margin(z, labels, 2.5))


@pytest.mark.parametrize("squared", [False, True])
def test_triplet_batch_hard_matches_reference(squared: bool) -> None:
    labels = [0, 1, 0, -1, 2, 1, 1, 3, 0]  # 2 and 3 singletons: anchors without positive
    z = randn(9, 4, seed=5)
    got = L.triplet_batch_hard(z, torch.tensor(labels), margin=0.7, squared=squared)
    assert close(got, ref_triplet(z, labels, 0.7, squared))


@pytest.mark.parametrize("squared", [False, True])
def test_triplet_batch_all_matches_reference(squared: bool) -> None:
    labels = [0, 1, 0, -1, 2, 1, 1, 3, 0]
    z = randn(9, 4, seed=5)
    got = L.triplet_batch_all(z, torch.tensor(labels), margin=0.7, squared=squared)
    assert close(got, ref_triplet_all(z, labels, 0.7, squared))


def test_triplet_batch_all_known_numbers_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    z = torch.tensor([[0.0], [1.0], [3.0]])
    labels = torch.tensor([0, 0, 1])
    # (0, 1, 2): 1 - 3 + 2.5 = 0.5; (1, 0, 2): 1 - 2 + 2.5 = 1.5 -> mean of the active 1.0
    assert close(L.triplet_batch_all(z, labels, margin=2.5), 1.0)
    assert float(L.triplet_batch_all(z, labels, margin=0.5)) == 0.0  # none active
    # Split into chunks of anchors, the loss is the whole cube's.
    monkeypatch.setattr(metric_losses, "_CUBE_ENTRIES", 5000)
    big = randn(300, 3, seed=6)
    lab = torch.arange(300) % 7
    d = torch.cdist(big, big)
    gap = d[:, :, None] - d[:, None, :] + 0.5
    same = lab[:, None] == lab[None, :]
    valid = (same & ~torch.eye(300, dtype=torch.bool))[:, :, None] & ~same[:, None, :]
    terms = torch.where(valid, gap.clamp_min(0), torch.zeros_like(gap))
    assert close(L.triplet_batch_all(big, lab, margin=0.5), terms.sum() / (terms > 0).sum())


def test_cross_entropy_matches_reference() -> None:
    logits = randn(6, 4, seed=1)
    labels = [2, -1, 0, 3, -1, 1]
    terms = []
    for i, y in enumerate(labels):
        if y == -1:
            continue
        lse = math.log(sum(math.exp(float(x)) for x in logits[i]))
        terms.append(lse - float(logits[i, y]))
    assert close(L.cross_entropy(logits, torch.tensor(labels)), sum(terms) / len(terms))


# --------------------------------------------------------------------------------------------
# Analytic values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("b", [1, 2, 8])
def test_info_nce_identical_embeddings_is_log_2b_minus_1(b: int) -> None:
    z = torch.ones(b, 3, dtype=DT)
    assert close(L.info_nce(z, z.clone(), 0.3), math.log(2 * b - 1))


@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.05])
def test_info_nce_orthogonal_aligned_pairs(temperature: float) -> None:
    b = 4
    z = torch.eye(8, dtype=DT)[:b] * 3.0  # scale is irrelevant: cosine similarity
    want = math.log(1 + (2 * b - 2) * math.exp(-1 / temperature))
    got = L.info_nce(z, z.clone(), temperature)
    assert close(got, want)
    if temperature == 0.05:
        assert float(got) < 1e-6


def test_info_nce_is_scale_invariant() -> None:
    z0, z1 = randn(5, 4, seed=1), randn(5, 4, seed=2)
    assert close(L.info_nce(z0, z1), L.info_nce(10 * z0, 0.1 * z1), 1e-10)


def test_moco_identical_keys_is_log_1_plus_k() -> None:
    q = torch.ones(3, 4, dtype=DT)
    assert close(L.info_nce_logits(q, q.clone(), torch.ones(9, 4, dtype=DT), 0.07), math.log(10))


def test_negative_cosine_and_byol_analytic() -> None:
    p = randn(5, 4)
    assert close(L.negative_cosine(p, p.clone()), -1.0)
    assert close(L.negative_cosine(p, 2 * p), -1.0)
    assert close(L.negative_cosine(p, -p), 1.0)
    assert close(L.byol_loss(p, 3 * p), 0.0)
    assert close(L.byol_loss(p, -p), 4.0)
    e = torch.eye(2)
    assert close(L.byol_loss(e[:1], e[1:]), 2.0)  # orthogonal: 2 - 2 * 0


def decorrelated(b: int, d: int, seed: int = 0) -> Tensor:
    """(b, d) with every column centred, unit (biased) variance and columns uncorrelated."""
    x = randn(b, d, seed=seed)
    q, _ = torch.linalg.qr(x - x.mean(0))  # orthonormal columns, each orthogonal to ones
    return q * math.sqrt(b)


def test_barlow_twins_decorrelated_identical_views_is_zero() -> None:
    z = decorrelated(16, 6)
    assert float(L.barlow_twins(z, z.clone())) < 1e-8
    # Scale and shift per dimension do not matter: standardisation removes them.
    assert float(L.barlow_twins(z, z * 5 + 2)) < 1e-8


def test_barlow_twins_known_value() -> None:
    # Each column is -1, 1 over a batch of 2: standardised to itself. Dims are perfectly
    # correlated, so C is all ones (eps aside): diagonal costs 0, off-diagonal lam * 2.
    z = torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=DT)
    assert close(L.barlow_twins(z, z, lambda_offdiag=0.25, eps=0.0), 0.5)
    # Second view negated: C = -1 everywhere: diagonal (1 - (-1))^2 = 4 per dim.
    assert close(L.barlow_twins(z, -z, lambda_offdiag=0.25, eps=0.0), 8.5)


def test_vicreg_analytic() -> None:
    z = decorrelated(10, 4) * math.sqrt(10 / 9) * 2  # unbiased std 2, uncorrelated
    terms = L.vicreg_terms(z, z.clone(), eps=0.0)
    for name in ("invariance", "variance", "covariance"):
        assert abs(float(terms[name])) < 1e-8, name
    collapsed = torch.zeros(10, 4)
    terms = L.vicreg_terms(collapsed, collapsed, eps=0.0)
    assert close(terms["variance"], 1.0)  # std 0: hinge at 1 on every dim, both branches
    assert close(L.vicreg(collapsed, collapsed, eps=0.0), 25.0)


def test_margin_contrastive_known_numbers() -> None:
    z0 = torch.tensor([[0.0, 0.0]])
    z1 = torch.tensor([[3.0, 4.0]])  # distance 5
    assert close(L.margin_contrastive(z0, z1, torch.tensor([1])), 12.5)
    assert close(L.margin_contrastive(z0, z1, torch.tensor([0]), margin=1.0), 0.0)
    assert close(L.margin_contrastive(z0, z1, torch.tensor([0]), margin=6.0), 0.5)
    two0, two1 = z0.repeat(2, 1), z1.repeat(2, 1)
    assert close(L.margin_contrastive(two0, two1, torch.tensor([1, 0]), margin=6.0), 6.5)


def test_triplet_known_numbers() -> None:
    z = torch.tensor([[0.0], [1.0], [3.0]])
    labels = torch.tensor([0, 0, 1])  # anchor 2 has no positive: skipped
    assert close(L.triplet_batch_hard(z, labels, margin=0.5), 0.0)
    # anchor 0: 1 - 3 + 2 = 0; anchor 1: 1 - 2 + 2 = 1  -> mean 0.5
    assert close(L.triplet_batch_hard(z, labels, margin=2.0), 0.5)
    # squared: anchor 0: 1 - 9 + 2 < 0; anchor 1: 1 - 4 + 4 = 1 -> mean 0.5
    assert close(L.triplet_batch_hard(z, labels, margin=4.0, squared=True), 0.5)


def test_triplet_separated_clusters_is_zero() -> None:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = torch.arange(3).repeat_interleave(4)
    z = centres[labels] + 0.1 * randn(12, 2, dtype=torch.float32)
    assert float(L.triplet_batch_hard(z, labels, margin=1.0)) == 0.0
    assert float(L.pairwise_margin_contrastive(z, labels, margin=1.0)) < 0.05
