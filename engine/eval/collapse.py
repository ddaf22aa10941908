"""Collapse diagnostics: is the network still telling images apart, and along how many directions?

Two failure modes of joint-embedding SSL (Jing et al. 2022, https://arxiv.org/abs/2110.09348):
- complete collapse: every image maps to (nearly) the same vector; the loss of a
  non-contrastive method can then sit flat at its minimum;
- dimensional collapse: embeddings differ, but only along a few directions of the space.

The metrics are pure functions over embeddings ``z0, z1`` (two views of the same N images,
(N, D)) and the backbone features ``h`` (N, Dh). :func:`diagnostics` bundles them into one
JSON-able dict and :func:`collapse_alarm` turns that dict into a verdict in plain language
(thresholds in :class:`AlarmThresholds`, texts in :mod:`engine.eval.collapse_causes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.eval.collapse_causes import causes_for, is_supervised
from engine.eval.vectors import as_matrix, l2_normalise, same_shape

RANKME_EPS = 1e-7  # the epsilon of RankMe's p_k = s_k / ||s||_1 + eps
SPECTRUM_LEN = 128  # singular values kept in a diagnostics dict (for the spectrum plot)
MAX_UNIFORMITY_POINTS = 2048  # uniformity is O(N^2); larger inputs are subsampled
MAX_NEGATIVES = 4096  # negative pairs sampled by pair_cosines


def normalised_std(z: Any) -> float:
    """Mean over dimensions of the standard deviation of the L2-normalised embeddings.

    SimSiam (Chen & He 2020, https://arxiv.org/abs/2011.10566, sec. 4.1): for z/||z|| with
    i.i.d. Gaussian coordinates each coordinate has std ~ 1/sqrt(D); complete collapse gives 0.
    Population std (ddof=0), so a single sample gives 0 rather than NaN; for the N = D rows of
    an identity matrix the value is sqrt(D - 1) / D.

    Args:
        z: (N, D).
    """
    zn = l2_normalise(as_matrix(z, "z")).astype(np.float64)
    return float(zn.std(axis=0).mean())


def singular_values(x: Any) -> np.ndarray:
    """Singular values of the raw (uncentred) embedding matrix, descending, float64 (min(N, D),).

    Uncentred, as RankMe uses them: centring would subtract the one direction a completely
    collapsed embedding has left and make its rank undefined (all zeros). Computed as square
    roots of the eigenvalues of the smaller Gram matrix (x^T x or x x^T, float64): several
    times faster than an SVD, exact to ~1e-8 of the largest value, far below what the entropy
    in :func:`effective_rank` or a spectrum plot can see.

    Args:
        x: (N, D).
    """
    a = as_matrix(x).astype(np.float64)
    gram = a.T @ a if a.shape[0] >= a.shape[1] else a @ a.T  # (min(N, D),) * 2
    ev = np.linalg.eigvalsh(gram)[::-1]
    return np.sqrt(np.clip(ev, 0.0, None))


def _rankme(s: np.ndarray) -> float:
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total + RANKME_EPS
    return float(np.exp(-(p * np.log(p)).sum()))


def effective_rank(x: Any) -> float:
    """RankMe effective rank (Garrido et al. 2023, https://arxiv.org/abs/2210.02885).

    ``exp(H(p))`` with ``p_k = s_k / sum(s) + eps`` over the singular values s of x: 1 for a
    rank-1 matrix, min(N, D) when all singular values are equal. 0.0 for an all-zero matrix.

    Args:
        x: (N, D).
    """
    return _rankme(singular_values(x))


def alignment(z0: Any, z1: Any, alpha: float = 2) -> float:
    """Alignment ``E ||f(x) - f(y)||^alpha`` over positive pairs of L2-normalised embeddings.

    Wang & Isola 2020 (https://arxiv.org/abs/2005.10242); 0 when both views map to the same
    point, 4 (alpha=2) at worst.

    Args:
        z0, z1: (N, D) two views, row i of each from the same image.
    """
    a = l2_normalise(as_matrix(z0, "z0")).astype(np.float64)
    b = l2_normalise(as_matrix(z1, "z1")).astype(np.float64)
    same_shape(a, b)
    return float((np.linalg.norm(a - b, axis=1) ** alpha).mean())


def uniformity(
    z: Any, t: float = 2, max_points: int = MAX_UNIFORMITY_POINTS, seed: int = 0
) -> float:
    """Uniformity ``log E_{i<j} exp(-t ||z_i - z_j||^2)`` of L2-normalised embeddings.

    Wang & Isola 2020 (https://arxiv.org/abs/2005.10242): 0 when all points coincide, more
    negative the more evenly they cover the sphere (about -t * 2 for large uniform sets).
    Inputs with more than ``max_points`` rows are subsampled (seeded) to bound the O(N^2) cost.

    Args:
        z: (N, D) with N >= 2.
    """
    zn = l2_normalise(as_matrix(z, "z")).astype(np.float64)
    n = zn.shape[0]
    if n < 2:
        raise ValueError("uniformity needs at least 2 embeddings")
    if n > max_points:
        zn = zn[np.random.default_rng(seed).choice(n, max_points, replace=False)]
        n = max_points
    i, j = np.triu_indices(n, k=1)
    sq = np.clip(2.0 - 2.0 * (zn @ zn.T)[i, j], 0.0, 4.0)  # ||a - b||^2 of unit vectors
    a = -t * sq
    m = a.max()
    return float(m + np.log(np.exp(a - m).mean()))


def pair_cosines(
    z0: Any, z1: Any, max_negatives: int = MAX_NEGATIVES, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of positive pairs (z0[i], z1[i]) and of negative pairs (z0[i], z1[j]).

    Args:
        z0, z1: (N, D) two views.
        max_negatives: all N(N-1) negative pairs when that many fit, otherwise this many
            pairs drawn uniformly (seeded) among them.

    Returns:
        positives float32 (N,); negatives float32 (min(N(N-1), max_negatives),), empty if N=1.
    """
    a = l2_normalise(as_matrix(z0, "z0"))
    b = l2_normalise(as_matrix(z1, "z1"))
    same_shape(a, b)
    n = a.shape[0]
    pos = np.einsum("nd,nd->n", a, b)
    if n * (n - 1) <= max_negatives:
        i, j = np.nonzero(~np.eye(n, dtype=bool))
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, max_negatives)
        j = (i + rng.integers(1, n, max_negatives)) % n  # never i
    neg = np.einsum("nd,nd->n", a[i], b[j])
    return pos.astype(np.float32), neg.astype(np.float32)


def histogram(values: Any, bins: int = 40, range: tuple[float, float] = (-1.0, 1.0)) -> dict:
    """Histogram as JSON-able lists; values outside ``range`` are clipped into the end bins,
    so the counts always sum to the number of values.

    Returns:
        ``{"edges": [bins + 1 floats], "counts": [bins ints]}``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if np.isnan(v).any():
        raise ValueError("histogram values contain NaN")
    counts, edges = np.histogram(np.clip(v, *range), bins=bins, range=range)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _rank_and_spectrum(x: np.ndarray) -> tuple[float, list[float]]:
    s = singular_values(x)
    top = s[:SPECTRUM_LEN]
    return _rankme(s), [float(v) for v in (top / top[0] if top[0] > 0 else top)]


def diagnostics(h: Any | None, z0: Any, z1: Any) -> dict:
    """All collapse metrics of one probe batch, as one flat JSON-able dict.

    Single-view statistics (std, rank, spectrum) use z0; uniformity is the mean over both
    views, as in Wang & Isola's code.

    Args:
        h: backbone features (N, Dh) of the same images, or None.
        z0, z1: embeddings (N, D) of two views, N >= 2.

    Returns:
        n, dim_z, std_z, std_healthy (= 1/sqrt(D)), rank_z, alignment, uniformity,
        pos_cos_mean, neg_cos_mean, spectrum_z (up to 128 singular values divided by the
        largest), pos_hist / neg_hist (:func:`histogram` of the pair cosines), and dim_h,
        rank_h, spectrum_h (None when h is None).
    """
    a = as_matrix(z0, "z0")
    b = as_matrix(z1, "z1")
    same_shape(a, b)
    n, d = a.shape
    if n < 2:
        raise ValueError("collapse diagnostics need at least 2 samples")
    pos, neg = pair_cosines(a, b)
    rank_z, spectrum_z = _rank_and_spectrum(a)
    out: dict[str, Any] = {
        "n": int(n),
        "dim_z": int(d),
        "std_z": normalised_std(a),
        "std_healthy": 1.0 / math.sqrt(d),
        "rank_z": rank_z,
        "alignment": alignment(a, b),
        "uniformity": (uniformity(a) + uniformity(b)) / 2,
        "pos_cos_mean": float(pos.mean()),
        "neg_cos_mean": float(neg.mean()),
        "spectrum_z": spectrum_z,
        "pos_hist": histogram(pos),
        "neg_hist": histogram(neg),
        "dim_h": None,
        "rank_h": None,
        "spectrum_h": None,
    }
    if h is not None:
        hm = as_matrix(h, "h")
        if hm.shape[0] != n:
            raise ValueError(f"h has {hm.shape[0]} rows but z0 has {n}")
        rank_h, spectrum_h = _rank_and_spectrum(hm)
        out.update(dim_h=int(hm.shape[1]), rank_h=rank_h, spectrum_h=spectrum_h)
    return out


@dataclass(frozen=True)
class AlarmThresholds:
    """When :func:`collapse_alarm` speaks. Ratios are measured against a healthy reference.

    std_ratio = std_z / (1/sqrt(D)). For embeddings c + noise (|c| = 1, isotropic noise of norm
    rho) std_ratio ~ rho and the mean negative cosine ~ 1 / (1 + rho^2), so std_ratio 0.2 and
    neg_cos 0.95 flag the same state: the spread between images is a fifth of what they share.
    A randomly initialised projector already sits at std_ratio ~0.8, neg_cos ~0.3.

    rank_ratio = rank / min(N, D), the largest rank N samples can show. Isotropic Gaussian
    embeddings give ~0.93, a random-init projector ~0.78; singular values decaying as
    i^-1 give ~0.34, as i^-2 ~0.04. A rank-2 embedding in 64 dims gives 0.03.
    """

    complete_std_ratio: float = 0.2  # critical below
    complete_neg_cos: float = 0.95  # critical above
    complete_rank: float = 1.5  # critical below: one direction (or a point and its mirror)
    warn_std_ratio: float = 0.4  # warning below (rho 0.4: neg cos ~0.86)
    dimensional_rank_ratio: float = 0.1  # critical below
    warn_rank_ratio: float = 0.25  # warning below
    h_rank_ratio: float = 0.05  # backbone: critical below (random-init ReLU features ~0.25)


DEFAULT_THRESHOLDS = AlarmThresholds()


@dataclass
class Alarm:
    """A collapse verdict for the UI.

    kind: 'complete' | 'dimensional' | 'none'; severity: 'critical' | 'warning' | 'none';
    message: plain-language explanation with the numbers; causes: the usual causes for the
    method, most likely first.
    """

    kind: str
    severity: str
    message: str
    causes: list[str] = field(default_factory=list)


def collapse_alarm(
    diag: dict,
    method: str | None = None,
    thresholds: AlarmThresholds = DEFAULT_THRESHOLDS,
    step: int | None = None,
) -> Alarm:
    """Read a :func:`diagnostics` dict and say whether, and how, the embeddings collapsed.

    Complete collapse is checked first (it also shows as a low rank). Supervised methods
    (cross-entropy, SupCon) are spared the dimensional verdict: concentrating each class on
    about one direction is their goal (neural collapse, Papyan et al. 2020,
    https://arxiv.org/abs/2008.08186). Early in training (first few hundred steps) a warning
    can be a transient; a critical alarm that persists is not.

    At step 0 there is no verdict: a randomly initialised network maps all images close
    together (mean cosine often above 0.9) and along few directions. That is where every run
    starts, not a collapse; the alarm judges what training makes of it.

    Args:
        diag: output of :func:`diagnostics`.
        method: registered method name (picks the list of causes); None for generic causes.
        step: the training step the embeddings come from, if known (0 = untrained).
    """
    if step == 0:
        return _untrained(diag)
    th = thresholds
    supervised = is_supervised(method)
    std_ratio = diag["std_z"] / diag["std_healthy"]
    neg = diag["neg_cos_mean"]
    rank_z, dim_z = diag["rank_z"], diag["dim_z"]
    max_rank = min(diag["n"], dim_z)
    rank_ratio = rank_z / max_rank
    if std_ratio < th.complete_std_ratio or neg > th.complete_neg_cos:
        msg = (
            "Complete collapse: nearly every image gets the same embedding, so the network no "
            f"longer tells images apart. Spread of the normalised embeddings {diag['std_z']:.4f} "
            f"(healthy about {diag['std_healthy']:.4f}); two different images have cosine "
            f"similarity {neg:.2f} on average (healthy: near 0)."
        )
        return Alarm("complete", "critical", msg, causes_for(method, "complete"))
    # one direction: images map to a point or its mirror image (for a supervised method with
    # two classes that is the intended optimum)
    if rank_z < th.complete_rank and not supervised:
        msg = (
            f"Complete collapse: all embeddings lie along one direction (effective rank "
            f"{rank_z:.2f} of {max_rank}), so images differ only by a sign."
        )
        return Alarm("complete", "critical", msg, causes_for(method, "complete"))
    if not supervised:
        h_low = diag.get("rank_h") is not None and (
            diag["rank_h"] / min(diag["n"], diag["dim_h"]) < th.h_rank_ratio
        )
        if rank_ratio < th.dimensional_rank_ratio or h_low:
            return Alarm(
                "dimensional", "critical", _dimensional_msg(diag), causes_for(method, "dimensional")
            )
    if std_ratio < th.warn_std_ratio:
        msg = (
            "Embeddings are drifting together: their spread is "
            f"{std_ratio:.0%} of a healthy run's ({diag['std_z']:.4f} vs "
            f"{diag['std_healthy']:.4f}). Watch whether it keeps falling."
        )
        return Alarm("complete", "warning", msg, causes_for(method, "complete"))
    if not supervised and rank_ratio < th.warn_rank_ratio:
        msg = _dimensional_msg(diag) + " This may still recover; watch the spectrum."
        return Alarm("dimensional", "warning", msg, causes_for(method, "dimensional"))
    msg = (
        f"No sign of collapse: embeddings use about {rank_z:.0f} of {max_rank} possible "
        f"directions and their spread is {std_ratio:.0%} of the healthy value."
    )
    return Alarm("none", "none", msg, [])


def _untrained(diag: dict) -> Alarm:
    """No alarm at step 0, and why (see :func:`collapse_alarm`)."""
    msg = (
        "Untrained network (step 0): random weights map different images to similar "
        f"embeddings (mean cosine {diag['neg_cos_mean']:.2f}, effective rank "
        f"{diag['rank_z']:.1f}). That is normal at the start; healthy training spreads them out, "
        "and the alarm watches whether it does."
    )
    return Alarm("none", "none", msg, [])


def _dimensional_msg(diag: dict) -> str:
    max_rank = min(diag["n"], diag["dim_z"])
    msg = (
        "Dimensional collapse: images are still told apart, but only along about "
        f"{diag['rank_z']:.1f} of the {max_rank} directions the embedding could use "
        "(effective rank)."
    )
    if diag.get("rank_h") is not None:
        msg += (
            f" Backbone features h: about {diag['rank_h']:.1f} of {min(diag['n'], diag['dim_h'])}."
        )
    return msg
