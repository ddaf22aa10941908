"""Run configuration: frozen dataclasses with commented defaults, dict round-trip, validation.

``RunConfig`` is the one description of a run. It is saved as ``config.json`` in the run
directory and is what the UI form, the CLI (``--set KEY=VALUE``) and the tests build.
Method hyper-parameters live in ``method.params`` and are validated against the method's own
config dataclass (see ``engine.methods``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class DataConfig:
    name: str = "shapes"  # a registered data set (python -m engine list datasets)
    image_size: int = 32  # pixels; images are resized once, at load time
    root: str = ""  # folder data set: the image folder; others: ignored
    data_dir: str = ""  # where downloads and decoded caches go ("" = ./data_cache)
    labels_per_class: int = 0  # keep labels for this many train images per class (0 = all)
    train_size: int = 0  # 0 = the data set's own size; shapes: images generated
    test_size: int = 0  # 0 = the data set's own size
    seed: int = 0  # shapes generation and the labelled subset (fixed, so runs share images)


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "small_cnn"  # python -m engine list backbones
    width: int = 0  # small_cnn / vit: channel width (0 = the backbone's default)


@dataclass(frozen=True)
class AugmentConfig:
    preset: str = "simclr"  # python -m engine list presets
    # Explicit per-view pipelines; when given they replace the preset. Each view is a list of
    # ops: {"op": "color_jitter", "p": 0.8, "brightness": 0.4, ...}.
    views: tuple = ()
    disable: tuple = ()  # op names switched off in every view (teaching switch)


@dataclass(frozen=True)
class MethodConfig:
    name: str = "simclr"  # python -m engine list methods
    params: dict = field(default_factory=dict)  # overrides of the method's own config


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 256  # images per step (before views)
    epochs: float = 10  # passes over the train split; 0 = evaluate the untrained backbone
    max_seconds: float = 0  # stop after this wall time, a normal finish (0 = no limit)
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 2e-3  # per 256 images; scaled linearly with batch_size
    weight_decay: float = 1e-4
    momentum: float = 0.9  # sgd
    warmup_epochs: float = 0.5  # linear warm-up, then cosine decay to 0
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "auto"  # auto (bf16 on CUDA) | fp32 | bf16
    compile: bool = False  # torch.compile the step (CUDA; pays off on long runs only)
    channels_last: bool = True  # NHWC memory format on CUDA and the CPU
    checkpoint_every_seconds: float = 120  # 0 = only at the end


@dataclass(frozen=True)
class EvalConfig:
    every_seconds: float = 15  # kNN evaluation and embedding snapshot cadence
    every_epochs: float = 0  # or every N epochs (0 = use every_seconds)
    knn_k: int = 20  # neighbours for the weighted kNN vote
    knn_temperature: float = 0.1  # weight = exp(cos / T)  (Wu et al. 2018)
    knn_train_size: int = 5000  # train images used as the kNN memory bank (0 = all)
    knn_test_size: int = 1000  # test images classified (0 = all)
    linear_probe: bool = True  # at the end: a linear head on frozen h (bank -> test queries)
    snapshot_size: int = 1000  # test images embedded in each map snapshot
    diagnostics_every_steps: int = 20  # collapse diagnostics on a fixed probe batch (0 = off);
    # their cost against training: bench/bench_diagnostics.py, BENCHMARKS.md
    probe_size: int = 128  # images in that probe batch (256: about 7 % of a CPU step's time)
    batch_size: int = 512  # images per forward pass while embedding


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

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        d = dict(d)
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown config section(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            sub = SECTIONS.get(f.name)
            kwargs[f.name] = _build(sub, d[f.name], f.name) if sub else d[f.name]
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """A copy with dotted keys set: ``{"train.batch_size": 128, "method.temperature": 0.2}``.

        Keys under ``method.`` other than ``method.name`` go to ``method.params``.
        """
        d = self.to_dict()
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


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def _coerce(value: Any, default: Any, key: str, annotation: str = "") -> Any:
    """Convert a value (often a string from the CLI) to the field's type (its annotation, else
    the type of its default)."""
    if annotation == "float" and not isinstance(default, bool):
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
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) else int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = json.loads(value) if value.strip().startswith("[") else [
                    v for v in value.split(",") if v
                ]
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


def validate(cfg: RunConfig) -> None:
    """Raise ``ValueError`` with an actionable message when a setting is impossible."""
    t, d, e = cfg.train, cfg.data, cfg.eval
    checks = [
        (d.image_size >= 8, f"data.image_size must be at least 8 px (got {d.image_size})"),
        (d.image_size <= 512, f"data.image_size must be at most 512 px (got {d.image_size})"),
        (d.labels_per_class >= 0, "data.labels_per_class must be 0 (all) or positive"),
        (t.batch_size >= 2, f"train.batch_size must be at least 2 (got {t.batch_size})"),
        (t.batch_size <= 65536, f"train.batch_size is too large ({t.batch_size})"),
        (t.epochs >= 0, f"train.epochs must be 0 or more (got {t.epochs})"),
        (t.max_seconds >= 0, "train.max_seconds must be 0 (no limit) or positive"),
        (t.lr > 0, f"train.lr must be positive (got {t.lr})"),
        (t.weight_decay >= 0, "train.weight_decay must be 0 or positive"),
        (t.optimizer in ("adamw", "sgd"), "train.optimizer must be adamw or sgd"),
        (t.device in ("auto", "cpu", "cuda", "mps"), "train.device must be auto, cpu, cuda or mps"),
        (t.precision in ("auto", "fp32", "bf16"), "train.precision must be auto, fp32 or bf16"),
        (e.knn_k >= 1, "eval.knn_k must be at least 1"),
        (e.knn_temperature > 0, "eval.knn_temperature must be positive"),
        (e.every_seconds >= 0 and e.every_epochs >= 0, "eval cadence must be 0 or positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
