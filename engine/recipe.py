"""A method's recipe: the settings a run leaves to its method, resolved in one place.

``augment.preset`` (``""``), ``train.batch_size``, ``train.lr`` and ``train.warmup_epochs``
(``None``) mean "the method's own": its ``Method.default_preset`` and ``Method.train_defaults``,
else the engine's :data:`TRAIN_RECIPE` (SGD's learning rate is :data:`SGD_LR`). On natural
images (:data:`NATURAL_IMAGE_DATA`: photos, the user's own folder) a preset sized for a few
small objects on a plain background gives way to its natural-image form
(:data:`NATURAL_PRESETS`). An explicit value always wins. A ``RunConfig`` calls :func:`fill`
when it is made, so the Train page, the CLI (``--set method.name=X``), the lessons, the tests
and the benchmarks all get the same run for the same method, and ``config.json`` is complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.config import RunConfig

#: what a method gets when it declares nothing else (``Method.train_defaults`` overrides)
TRAIN_RECIPE: dict[str, float] = {
    "batch_size": 128,  # a step in about a second on a 2-core CPU: the curves move at once
    "lr": 2e-3,  # per 256 images, AdamW
    "warmup_epochs": 0.5,
}
#: SGD's learning rate per 256 images: SimSiam's (Chen & He 2020, section 4)
SGD_LR = 0.05
#: the preset of a method that names none (``Method.default_preset``'s own default)
DEFAULT_PRESET = "simclr"
#: data sets of natural images: photos, and a folder of the user's own images
NATURAL_IMAGE_DATA = ("folder", "cifar10", "cifar100", "stl10")
#: preset sized for small objects on a plain background -> its form for natural images. SimCLR
#: on CIFAR-10, small CNN, 300 s on a 2-core CPU: BENCHMARKS.md, "CIFAR-10 on the CPU"
NATURAL_PRESETS = {"simclr": "simclr_cifar"}


def recipe(method: str, optimizer: str = "adamw", data: str = "") -> dict[str, Any]:
    """The settings ``method`` brings on data set ``data``: ``{"augment.preset",
    "train.batch_size", "train.lr", "train.warmup_epochs"}``. An unknown method gets the
    engine's (the run's check names it)."""
    from engine.methods import METHODS

    cls = METHODS.get(method) if method in METHODS else None
    train = train_recipe(cls.train_defaults if cls is not None else {}, optimizer)
    preset = preset_for(cls.default_preset if cls is not None else DEFAULT_PRESET, data)
    return {"augment.preset": preset, **{f"train.{k}": v for k, v in train.items()}}


def preset_for(preset: str, data: str) -> str:
    """A method's preset on data set ``data``: its natural-image form on natural images."""
    return NATURAL_PRESETS.get(preset, preset) if data in NATURAL_IMAGE_DATA else preset


def train_recipe(train_defaults: dict[str, float], optimizer: str = "adamw") -> dict[str, float]:
    """Batch size, learning rate and warm-up for a method's ``train_defaults`` (which win)
    and an optimiser (SGD's learning rate is :data:`SGD_LR`)."""
    lr = SGD_LR if optimizer == "sgd" else TRAIN_RECIPE["lr"]
    return {**TRAIN_RECIPE, "lr": lr, **train_defaults}


def fill(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """Section -> {field: value} for every setting ``cfg`` leaves to its method (empty when it
    leaves none). ``RunConfig`` applies this when it is made."""
    own = recipe(cfg.method.name, cfg.train.optimizer, cfg.data.name)
    out: dict[str, dict[str, Any]] = {}
    for key, value in own.items():
        section, name = key.split(".")
        if getattr(getattr(cfg, section), name) in (None, ""):
            if name == "batch_size":
                value = int(value)
            elif name in ("lr", "warmup_epochs"):
                value = float(value)
            out.setdefault(section, {})[name] = value
    return out


def resolve(cfg: RunConfig | dict[str, Any]) -> RunConfig:
    """The full configuration of a run (what ``config.json`` saves) from a ``RunConfig`` or a
    partial dict of sections: every setting left to the method filled in from its recipe."""
    from engine.config import RunConfig

    if isinstance(cfg, dict):
        return RunConfig.from_dict(cfg)
    return cfg.with_overrides({})
