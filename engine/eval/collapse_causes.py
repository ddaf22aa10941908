"""The usual causes of collapse in plain language: the generic ones here, a method's own in its
class (``Method.collapse_causes``), listed first.
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


def _method(name: str | None):  # noqa: ANN202 — the registered Method class, or None
    from engine.methods import METHODS

    key = (name or "").strip().lower().replace("-", "_").replace(" ", "_")
    return METHODS.get(key) if key in METHODS.names() else None


def causes_for(method: str | None, kind: str) -> list[str]:
    """The method's own causes for ``kind`` (if any), then the generic ones."""
    cls = _method(method)
    specific = cls.collapse_causes.get(kind, []) if cls is not None else []
    return [*specific, *GENERAL.get(kind, [])]


def is_supervised(method: str | None) -> bool:
    """Whether the method trains with class labels (dimensional collapse is then expected)."""
    cls = _method(method)
    return cls is not None and cls.needs_labels
