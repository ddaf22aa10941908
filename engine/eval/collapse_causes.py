"""The usual causes of collapse, per method and per kind of collapse, in plain language.

Keyed by registered method name, then by collapse kind ('complete' | 'dimensional'); a method
or kind without an entry falls back to the generic list. Method-specific causes come first,
the generic ones (optimisation, augmentation) after them.
"""

from __future__ import annotations

GENERAL: dict[str, list[str]] = {
    "complete": [
        "Learning rate too high: the run may have diverged into a constant output.",
        "Weight decay too strong: it can shrink the network to a constant output.",
        "Augmentations too weak: the two views are so alike that a constant output is an easy "
        "answer; or so strong that the views share nothing to agree on.",
    ],
    "dimensional": [
        "Augmentations too strong: views that share little push the network to keep only a few "
        "robust features (Jing et al. 2022, https://arxiv.org/abs/2110.09348).",
        "Learning rate too high or weight decay too strong.",
        "Training is still young: ranks often dip early and recover.",
    ],
}

CAUSES: dict[str, dict[str, list[str]]] = {
    "simsiam": {
        "complete": [
            "Stop-gradient missing on the target branch: without it SimSiam collapses at once "
            "(Chen & He 2020, https://arxiv.org/abs/2011.10566, sec. 4.1).",
            "Predictor removed or made the identity: SimSiam needs the predictor MLP.",
            "Predictor learning rate decayed with the schedule: the paper keeps it fixed.",
        ],
    },
    "byol": {
        "complete": [
            "No predictor on the online branch: BYOL collapses without it "
            "(Grill et al. 2020, https://arxiv.org/abs/2006.07733).",
            "Target momentum 0 (or no EMA target): the target then copies the online network "
            "each step and nothing stops the collapse.",
            "Gradient flowing into the target network: it must be updated only by EMA.",
        ],
    },
    "simclr": {
        "complete": [
            "Temperature far too high: negatives barely push apart.",
            "Batch too small: too few negatives per step.",
        ],
        "dimensional": [
            "Temperature too high or batch too small: weak repulsion between negatives.",
            "No projector head: the loss then squeezes the backbone features themselves "
            "(Jing et al. 2022). Some collapse of the projector output z is normal; check h.",
        ],
    },
    "moco": {
        "complete": [
            "Temperature far too high, or a queue too short to hold enough negatives.",
            "Momentum encoder momentum too low: the queued keys go stale inconsistently.",
        ],
        "dimensional": [
            "Temperature too high or queue too short: weak repulsion between negatives.",
            "No projector head (MoCo v2 adds an MLP head): the loss squeezes the backbone.",
        ],
    },
    "barlow_twins": {
        "complete": [
            "Batch normalisation of the embeddings removed: the cross-correlation loss needs "
            "standardised dimensions (Zbontar et al. 2021, https://arxiv.org/abs/2103.03230).",
        ],
        "dimensional": [
            "Off-diagonal (redundancy) weight lambda set to 0: nothing stops all dimensions "
            "from encoding the same feature.",
            "Projector too narrow: Barlow Twins gains from wide projectors (8192 in the paper).",
        ],
    },
    "vicreg": {
        "complete": [
            "Variance weight set to 0: nothing keeps the embeddings spread, and they collapse "
            "(Bardes et al. 2022, https://arxiv.org/abs/2105.04906).",
            "Invariance weight far larger than the variance weight.",
        ],
        "dimensional": [
            "Covariance weight set to 0: dimensions become copies of each other.",
        ],
    },
    "mim": {
        "dimensional": [
            "Masked image modelling has no term that spreads h: unlike the joint-embedding "
            "methods nothing in its loss keeps dimensions apart, so a low effective rank is "
            "common here and says less. Judge the run by its kNN accuracy and reconstructions.",
            "Hidden patches as small as one feature cell (method.mask_patch set to the "
            "backbone's stride): the visible neighbours suffice to fill them in and the "
            "features stay local.",
        ],
    },
    "supcon": {
        "complete": [
            "Temperature far too high: same-class and different-class pairs barely differ "
            "(Khosla et al. 2020, https://arxiv.org/abs/2004.11362).",
            "Batch too small, or too few classes per batch.",
        ],
    },
}

ALIASES = {"moco_v2": "moco", "mocov2": "moco", "moco_v3": "moco", "barlowtwins": "barlow_twins"}
SUPERVISED = frozenset({"cross_entropy", "supcon"})


def canonical(method: str | None) -> str:
    """A method name as the CAUSES table spells it ('MoCo-v2' -> 'moco')."""
    if not method:
        return ""
    key = method.strip().lower().replace("-", "_").replace(" ", "_")
    return ALIASES.get(key, key)


def causes_for(method: str | None, kind: str) -> list[str]:
    """Method-specific causes for ``kind`` (if any), then the generic ones."""
    specific = CAUSES.get(canonical(method), {}).get(kind, [])
    return [*specific, *GENERAL.get(kind, [])]


def is_supervised(method: str | None) -> bool:
    """Whether the method trains with class labels (dimensional collapse is then expected)."""
    return canonical(method) in SUPERVISED
