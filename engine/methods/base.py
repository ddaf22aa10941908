"""The contract every method follows, and the helpers that turn a config dataclass into a form.

A method is one file: a config dataclass (paper defaults with units and help in field
metadata) and an ``nn.Module`` subclass of :class:`Method` registered in ``METHODS``. The
trainer calls ``training_step(batch) -> StepOutput`` and ``on_step_end(progress)``; the
evaluator calls ``embed(x) -> {"h": ..., "z": ...}``. The UI form, the CLI ``--set
method.KEY=...`` and the method test suite all read the config dataclass, so adding a method
is adding one file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from engine.config import setting
from engine.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")


#: a config field with its help text and allowed range (read by the UI form and validation):
#: the same declaration as the run settings' (``engine.config.setting``)
param = setting


@dataclass
class Batch:
    """What the trainer hands a method each step.

    x: uint8 images (B, C, H, W) on the training device (not yet augmented: the method asks
       for as many views as it needs through ``views``).
    y: int64 labels (B,), -1 for unlabelled images.
    augment: the run's ``Augmenter`` (per-view pipelines, batched, per-sample parameters).
    generator: the run's random generator on the training device.
    """

    x: torch.Tensor
    y: torch.Tensor
    augment: Any
    generator: torch.Generator

    def view(self, i: int, x: torch.Tensor | None = None) -> torch.Tensor:
        """Augmented view ``i`` of the batch, float (B, C, H, W), normalised."""
        return self.augment.view(self.x if x is None else x, i, self.generator)

    def plain(self, x: torch.Tensor | None = None) -> torch.Tensor:
        """The batch normalised without augmentation."""
        return self.augment.normalise(self.x if x is None else x)


@dataclass
class StepOutput:
    """A step's loss (scalar tensor with grad) and extra scalars to log (tensors, not floats,
    so the trainer can read them without a host sync every step)."""

    loss: torch.Tensor
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


class Method(nn.Module):
    """Base class: a backbone (``h``) plus whatever heads and targets the method needs."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    #: one line for the method picker
    summary: ClassVar[str] = ""
    #: paper link
    paper: ClassVar[str] = ""
    #: the method cannot train without labels
    needs_labels: ClassVar[bool] = False
    #: the method uses labels when present but also unlabelled images (semi-supervised)
    semi_supervised: ClassVar[bool] = False
    #: the augmentation preset this method is designed for
    default_preset: ClassVar[str] = "simclr"
    #: ``TrainConfig`` fields this method wants other than the engine's recipe (batch_size,
    #: lr, warmup_epochs): every run that leaves them out gets them (``engine.recipe``)
    train_defaults: ClassVar[dict[str, float]] = {}
    #: on several processes (torchrun), batch norm over the global batch when
    #: ``train.sync_batchnorm`` is auto: the methods whose papers use SyncBN
    #: (``engine.train.data_parallel``)
    sync_batchnorm: ClassVar[bool] = False
    #: gradient accumulation (``train.accumulate``) gives the full batch's gradients: the loss
    #: is a mean over independent images. False: in-batch negatives or batch statistics make
    #: micro-batches an approximation (``engine.train.accumulate``)
    exact_accumulation: ClassVar[bool] = False
    #: data set name -> why the method means little there (shown when both are picked)
    data_caveats: ClassVar[dict[str, str]] = {}
    #: collapse kind ("complete" | "dimensional") -> the usual causes for this method, in plain
    #: language, shown before the generic ones of :mod:`engine.eval.collapse_causes`
    collapse_causes: ClassVar[dict[str, list[str]]] = {}

    def __init__(self, backbone: nn.Module, cfg: Any, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.cfg = cfg
        self.num_classes = num_classes

    # -- the trainer's calls --------------------------------------------------------------
    def training_step(self, batch: Batch) -> StepOutput:
        raise NotImplementedError

    def on_step_end(self, progress: float) -> None:
        """Called after each optimiser step; ``progress`` in [0, 1] (EMA schedules use it)."""

    def labelled_fraction(self) -> float | None:
        """Fraction of each batch to draw from labelled images (semi-supervised methods);
        None draws uniformly from the whole train split."""
        return None

    def param_groups(self) -> list[dict]:
        """Optimiser parameter groups; a group with ``fixed_lr=True`` skips the schedule."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    @property
    def freezes_backbone(self) -> bool:
        """Whether the backbone stays as it was given (a classifier on a frozen encoder)."""
        return False

    # -- evaluation -------------------------------------------------------------------------
    def logits(self, h: torch.Tensor) -> torch.Tensor | None:
        """Class scores (B, num_classes) of backbone features ``h`` (B, D) for methods whose
        classifier is not a plain linear ``classifier`` (the second stage's MLP head); None
        for the others. The evaluator reports the top-1 as ``classifier_top1``."""
        return None

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of normalised images x (B, C, H, W): ``h`` (B, D) and, where the method
        has a projector, ``z`` (B, d)."""
        h = self.backbone(x)
        out = {"h": h}
        projector = getattr(self, "projector", None)
        if projector is not None:
            out["z"] = projector(h)
        return out

    def reconstruct(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        """Methods that reconstruct images: normalised x (B, C, H, W) -> (3, B, C, H, W), the
        images, what the network was shown, and its reconstruction. None for the others."""
        return None


def build_method_config(cls: type[Method], params: dict[str, Any]) -> Any:
    """The method's config dataclass from user overrides, coerced and range-checked.

    Raises ``ValueError`` naming the key, the bad value and the allowed range.
    """
    known = {f.name: f for f in dataclasses.fields(cls.Config)}
    unknown = set(params) - set(known)
    if unknown:
        raise ValueError(
            f"{cls.name} has no option {', '.join(sorted(unknown))}; "
            f"its options: {', '.join(known) or '(none)'}"
        )
    defaults = cls.Config()
    values = {}
    for key, value in params.items():
        f = known[key]
        default = getattr(defaults, key)
        values[key] = _coerce(value, default, f"method.{key}", str(f.type))
        meta = f.metadata
        v = values[key]
        if meta.get("choices") and v not in meta["choices"]:
            raise ValueError(f"method.{key} must be one of {list(meta['choices'])} (got {v!r})")
        if isinstance(v, int | float) and not isinstance(v, bool):
            low, high = meta.get("low"), meta.get("high")
            if low is not None and v < low or high is not None and v > high:
                raise ValueError(f"method.{key} must be between {low} and {high} (got {v})")
    return dataclasses.replace(defaults, **values)


def _coerce(value: Any, default: Any, key: str, annotation: str) -> Any:
    from engine.config import _coerce as coerce

    return coerce(value, default, key, annotation)


def describe_method(cls: type[Method]) -> dict:
    """JSON-able description for UIs: name, summary, paper, and each option with its help."""
    defaults = cls.Config()
    options = []
    for f in dataclasses.fields(cls.Config):
        options.append(
            {
                "name": f.name,
                "default": getattr(defaults, f.name),
                "help": f.metadata.get("help", ""),
                "low": f.metadata.get("low"),
                "high": f.metadata.get("high"),
                "choices": f.metadata.get("choices"),
            }
        )
    return {
        "name": cls.name,
        "summary": cls.summary,
        "paper": cls.paper,
        "needs_labels": cls.needs_labels,
        "semi_supervised": cls.semi_supervised,
        "exact_accumulation": cls.exact_accumulation,
        "default_preset": cls.default_preset,
        "train_defaults": dict(cls.train_defaults),
        "data_caveats": dict(cls.data_caveats),
        "options": options,
    }
