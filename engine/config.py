"""Run configuration: frozen dataclasses with commented defaults, dict round-trip, validation.

``RunConfig`` is the one description of a run. It is saved as ``config.json`` in the run
directory and is what the UI form, the CLI (``--set KEY=VALUE``) and the tests build.
Method hyper-parameters live in ``method.params`` and are validated against the method's own
config dataclass (see ``engine.methods``).

Every setting is declared once, here: its default, help, bounds and choices sit in the field's
metadata (:func:`setting`); :func:`validate` and the Train page's form are derived from them.

A few settings are *the method's own* unless given: ``augment.preset`` (``""``),
``train.batch_size``, ``train.lr`` and ``train.warmup_epochs`` (``None``). A ``RunConfig``
fills them in from its method when it is made (``engine.recipe``), so every ``RunConfig`` is
complete and ``config.json`` holds concrete values; an explicit value always wins, and
:meth:`RunConfig.with_overrides` with another ``method.name`` gives that method's values.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any


def setting(
    default: Any,
    help: str,
    low: float | None = None,
    high: float | None = None,
    choices: tuple | None = None,
    above: float | None = None,
    pattern: str | None = None,
) -> Any:
    """A config field with its help, inclusive bounds (``low``, ``high``), a strict lower bound
    (``above``), allowed ``choices`` and other values it allows (a regular expression,
    ``pattern``): what validation and the form read."""
    meta = {"help": help, "low": low, "high": high, "choices": choices, "above": above,
            "pattern": pattern}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    name: str = setting("shapes", "A registered data set (python -m engine list datasets).")
    image_size: int = setting(32, "Pixels; images are resized once, at load time.", 8, 512)
    root: str = setting("", "Folder data set: the image folder (class sub-folders, or a flat "
                        "folder of unlabelled images) or an archive of one.")
    data_dir: str = setting("", "Where downloads and decoded caches go (\"\" = ./data_cache).")
    labels_per_class: int = setting(0, "Keep labels for only this many train images per class "
                                    "(semi-supervised methods; 0 = all).", 0)
    train_size: int = setting(0, "Train images (0 = the data set's own size; shapes: images "
                              "generated).", 0)
    test_size: int = setting(0, "Test images (0 = the data set's own size).", 0)
    seed: int = setting(0, "Shapes generation and the labelled subset (fixed, so runs share "
                        "images).")
    imbalance: float = setting(1.0, "Long-tailed train split: the largest class keeps this "
                               "many times the images of the smallest, counts falling "
                               "geometrically between (1 = as loaded; the test split is never "
                               "thinned).", 1, 1000)
    label_noise: float = setting(0.0, "Fraction of the labelled train images whose label is "
                                 "flipped to another class, at random (0 = clean; test labels "
                                 "never change).", 0, 0.95)
    noise_seed: int = setting(0, "Which labels data.label_noise flips (and which images "
                              "data.imbalance drops).")
    sampler: str = setting("uniform", "uniform: each epoch a permutation of the train split. "
                           "balanced: every batch holds every class equally (small classes "
                           "oversampled).", choices=("uniform", "balanced"))


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = setting("small_cnn", "python -m engine list backbones. small_cnn is fast on "
                            "a CPU; vit_tiny is for masked image modelling (MAE).")
    width: int = setting(0, "small_cnn / vit: channel width (0 = the backbone's default).", 0)
    pretrained: str = setting("", "Start the backbone from weights: \"imagenet\" "
                              "(torchvision's, for resnet18 / resnet50, read from the torch hub "
                              "cache) or a path to a .pth file (\"\" = random init).")
    init_from: str = setting("", "Start from another run's trained encoder: its run id (or its "
                             "run directory). The second stage of a two-stage recipe.")


@dataclass(frozen=True)
class AugmentConfig:
    preset: str = setting("", "python -m engine list presets. Unset (\"\"): the method's own.")
    # Explicit per-view pipelines; when given they replace the preset. Each view is a list of
    # ops: {"op": "color_jitter", "p": 0.8, "brightness": 0.4, ...}.
    views: tuple = setting((), "Per-view op lists that replace the preset.")
    disable: tuple = setting((), "Op names switched off in every view (a teaching switch).")


@dataclass(frozen=True)
class MethodConfig:
    name: str = setting("simclr", "python -m engine list methods.")
    params: dict = field(default_factory=dict)  # overrides of the method's own config


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int | None = setting(
        None, "Images per step (each seen in two or more views). Unset: the method's own.",
        2, 65536)
    accumulate: int = setting(1, "Micro-batches per optimiser step (gradient accumulation): "
                              "train.batch_size is the effective batch, split in this many "
                              "forward passes. Exact for losses that are a mean over images; "
                              "approximate for in-batch contrastive losses and BatchNorm.",
                              1, 1024)
    epochs: float = setting(0.0, "Passes over the train split (0 = no step bound: the time "
                            "budget ends the run; 0 with no time budget evaluates the "
                            "untrained backbone).", 0)
    max_seconds: float = setting(120.0, "Time budget in seconds: training stops after this wall "
                                 "time, a normal finish (0 = no limit).", 0)
    optimizer: str = setting("adamw", "AdamW: fast on short runs. SGD with momentum: the "
                             "papers' choice for long ones, at a larger learning rate.",
                             choices=("adamw", "sgd"))
    lr: float | None = setting(None, "Learning rate per 256 images, scaled linearly with the "
                               "batch size. Unset: the method's own (SGD: 0.05).", above=0)
    weight_decay: float = setting(1e-4, "Decoupled weight decay (AdamW) or L2 (SGD).", 0, 1)
    momentum: float = setting(0.9, "SGD momentum.", 0, 0.999)
    warmup_epochs: float | None = setting(
        None, "Linear warm-up of the learning rate (epochs), then cosine decay to 0 at the end "
        "of the budget. Unset: the method's own.", 0)
    device: str = setting("auto", "Where to train (cuda:N names one GPU of several).",
                          choices=("auto", "cpu", "cuda", "mps"), pattern=r"cuda:\d+")
    precision: str = setting("auto", "auto = bf16 on CUDA.", choices=("auto", "fp32", "bf16"))
    compile: bool = setting(False, "torch.compile the step (CUDA; pays off on long runs only).")
    channels_last: bool = setting(True, "NHWC memory format on CUDA and the CPU.")
    sync_batchnorm: str = setting(
        "auto", "Several processes (torchrun): batch-norm statistics over the global batch "
        "instead of each process's share. auto = on for BYOL, SimSiam, Barlow Twins and VICReg, "
        "whose papers use it.", choices=("auto", "on", "off"))
    checkpoint_every_seconds: float = setting(120.0, "Checkpoint every this many seconds of "
                                              "training (0 = no time cadence).", 0)
    checkpoint_every_steps: int = setting(0, "Checkpoint every this many steps (0 = no step "
                                          "cadence); a run always checkpoints when it ends.", 0)


@dataclass(frozen=True)
class EvalConfig:
    every_seconds: float = setting(15.0, "Wall time between evaluations (kNN and a new map); the "
                                   "engine spaces them further when one takes long.", 0)
    every_epochs: float = setting(0.0, "Or every N epochs (0 = use every_seconds).", 0)
    knn_k: int = setting(20, "Neighbours in the weighted kNN vote.", 1)
    knn_temperature: float = setting(0.1, "kNN vote weight exp(cos / T) (Wu et al. 2018).",
                                     above=0)
    knn_train_size: int = setting(1000, "Train images embedded as the kNN memory bank at each "
                                  "evaluation (0 = all). More is more accurate and slower.", 0)
    knn_test_size: int = setting(1000, "Test images classified by kNN (0 = all).", 0)
    linear_probe: bool = setting(True, "At the end: a linear head on frozen h (bank -> test "
                                 "queries).")
    snapshot_size: int = setting(1000, "Test images embedded in each map snapshot.", 0)
    # diagnostics' cost against training: bench/bench_diagnostics.py, BENCHMARKS.md
    diagnostics_every_steps: int = setting(20, "Collapse diagnostics on a fixed probe batch "
                                           "every N steps (0 = off).", 0)
    probe_size: int = setting(128, "Images in that probe batch.", 2)
    batch_size: int = setting(512, "Images per forward pass while embedding.", 1)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    name: str = ""  # a label for the run list ("" = method on data set)

    def __post_init__(self) -> None:
        from engine.recipe import fill

        own: frozenset[str] = frozenset()
        for section, values in fill(self).items():
            current = getattr(self, section)
            object.__setattr__(self, section, dataclasses.replace(current, **values))
            own |= {f"{section}.{k}" for k in values}
        # the dotted keys taken from the method: a copy with another method takes its values
        object.__setattr__(self, "_from_method", own)

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self, *, partial: bool = False) -> dict[str, Any]:
        """Every field, JSON-able (what ``config.json`` holds). ``partial``: the fields taken
        from the method left to it again (``None`` or ``""``), as they were given."""
        d = _jsonable(dataclasses.asdict(self))
        if partial:
            for key in getattr(self, "_from_method", ()):
                section, name = key.split(".")
                d[section][name] = getattr(SECTIONS[section](), name)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        if not isinstance(d, dict):
            raise ValueError(f"a run configuration is a mapping of sections, got "
                             f"{type(d).__name__}")
        d = dict(d)
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown config section(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            sub = SECTIONS.get(f.name)
            value = d[f.name]
            if f.name == "method" and isinstance(value, dict):  # options beside the name
                value = _method_section(value)
            kwargs[f.name] = _build(sub, value, f.name) if sub else value
        return cls(**kwargs)

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """A copy with dotted keys set: ``{"train.batch_size": 128, "method.temperature": 0.2}``.

        Keys under ``method.`` other than ``method.name`` go to ``method.params``. Settings
        this config took from its method are left to the (possibly new) method again.
        """
        d = self.to_dict(partial=True)
        for key, value in overrides.items():
            parts = key.split(".")
            if parts[0] == "method" and len(parts) == 2 and parts[1] not in ("name", "params"):
                d["method"].setdefault("params", {})[parts[1]] = value
                continue
            if len(parts) == 1:
                if parts[0] not in d:
                    raise ValueError(f"unknown config key {key!r}")
                d[parts[0]] = value
                continue
            if len(parts) != 2 or parts[0] not in d or not isinstance(d[parts[0]], dict):
                raise ValueError(
                    f"unknown config key {key!r}; use section.field, e.g. train.epochs"
                )
            section_cls = SECTIONS[parts[0]]
            if parts[1] not in {f.name for f in fields(section_cls)}:
                known = ", ".join(f.name for f in fields(section_cls))
                raise ValueError(f"unknown key {key!r}; {parts[0]} has: {known}")
            d[parts[0]][parts[1]] = value
        return RunConfig.from_dict(d)

    @property
    def label(self) -> str:
        return self.name or f"{self.method.name} · {self.data.name}"


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "augment": AugmentConfig,
    "method": MethodConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
}


def _method_section(d: dict[str, Any]) -> dict[str, Any]:
    """``{"name": "simclr", "temperature": 0.2}`` -> ``{"name": ..., "params": {...}}``: a
    file may give a method's options beside its name, as ``--set method.temperature`` does."""
    params = dict(d.get("params") or {})
    params.update({k: v for k, v in d.items() if k not in ("name", "params")})
    out = {k: v for k, v in d.items() if k in ("name", "params")}
    return {**out, "params": params} if params or "params" in d else out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def _coerce(value: Any, default: Any, key: str, annotation: str = "") -> Any:
    """Convert a value (often a string from the CLI) to the field's type (its annotation, else
    the type of its default). A field that may be ``None`` (the method's own) takes ``None``."""
    if default is None or annotation.endswith("| None"):
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        if default is None:
            default = 0.0 if annotation.startswith("float") else 0
    if annotation.startswith("float") and not isinstance(default, bool):
        default = float(default)
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) else int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(default, str):
            if not isinstance(value, str | int | float):
                raise ValueError
            return str(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = json.loads(value) if value.strip().startswith("[") else [
                    v for v in value.split(",") if v
                ]
            if not isinstance(value, list | tuple):
                raise ValueError
            return _freeze(value)
    except (TypeError, ValueError):
        expected = type(default).__name__
        raise ValueError(f"{key}: cannot use {value!r}; expected {expected}") from None
    return value


def _freeze(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return tuple(_freeze(v) for v in x)
    return x


def _build(cls: type, d: Any, section: str) -> Any:
    if isinstance(d, cls):
        return d
    if not isinstance(d, dict):
        raise ValueError(f"config section {section!r} must be a mapping")
    names = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(
            f"unknown key(s) in {section}: {', '.join(sorted(unknown))}; known: {', '.join(names)}"
        )
    defaults = cls()
    kwargs = {}
    for k, v in d.items():
        default = getattr(defaults, k)
        kwargs[k] = (
            dict(v)
            if isinstance(default, dict)
            else _coerce(v, default, f"{section}.{k}", str(names[k].type))
        )
    return cls(**kwargs)


def describe_setting(key: str) -> dict[str, Any]:
    """A setting's declaration for forms: ``{"name", "default", "help", "low", "high",
    "choices", "above"}`` (``key``: ``"section.field"``; the default may be ``None`` or
    ``""``: the method's own)."""
    section, name = key.split(".")
    cls = SECTIONS[section]
    f = next((f for f in fields(cls) if f.name == name), None)
    if f is None:
        raise ValueError(f"unknown config key {key!r}")
    return {"name": name, "default": getattr(cls(), name), **{
        k: f.metadata.get(k) for k in ("help", "low", "high", "choices", "above")}}


def check_setting(key: str, value: Any, meta: Any) -> None:
    """Raise ``ValueError`` naming ``key`` when ``value`` breaks its declared bounds or choices
    (``meta``: a field's metadata, see :func:`setting`)."""
    choices, pattern = meta.get("choices"), meta.get("pattern")
    if choices and value not in choices and not (pattern and re.fullmatch(pattern, str(value))):
        raise ValueError(f"{key} must be one of {', '.join(map(str, choices))} (got {value!r})")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    if value != value:  # NaN
        raise ValueError(f"{key} must be a number (got {value})")
    if low is not None and value < low:
        raise ValueError(f"{key} must be at least {low:g} (got {value:g})")
    if high is not None and value > high:
        raise ValueError(f"{key} must be at most {high:g} (got {value:g})")
    if above is not None and value <= above:
        word = "positive" if above == 0 else f"above {above:g}"
        raise ValueError(f"{key} must be {word} (got {value:g})")


def validate(cfg: RunConfig) -> None:
    """Raise ``ValueError`` naming the key when a setting is impossible: every field against
    its declared bounds and choices (:func:`setting`)."""
    for section, cls in SECTIONS.items():
        values = getattr(cfg, section)
        for f in fields(cls):
            value = getattr(values, f.name)
            if value is None:
                raise ValueError(f"{section}.{f.name} is not set")
            check_setting(f"{section}.{f.name}", value, f.metadata)
