"""One check of a whole run before anything is made for it.

:func:`check_run` is called by the CLI, the run registry (the Train page) and the lessons
before a run directory exists: every config value against its declaration, the method and its
options, the backbone, the augmentation views, the data (the folder exists, is allowed in LAN
mode, holds images) and labels when the method needs them. A bad run raises ``ValueError``
with one line that names the key or the file.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from engine.config import RunConfig, validate

if TYPE_CHECKING:
    from engine.data import Dataset


def check_run(cfg: RunConfig, dataset: Dataset | None = None) -> None:
    """Raise ``ValueError`` (one line naming the key or file) when ``cfg`` cannot run.

    ``dataset``: the run's data when already loaded (labels are then counted in it); without
    it a folder data set is listed (nothing decoded) and built-in ones are taken as labelled.
    A folder outside the data roots in LAN mode raises ``DataRootRefused`` (a ``ValueError``
    too) before anything under it is read.
    """
    validate(cfg)
    method = _check_method(cfg)
    _check_names(cfg)
    _check_backbone(cfg)
    _check_start(cfg)
    _check_views(cfg)
    labelled = _check_data(cfg, dataset)
    if method.needs_labels and labelled == 0:
        raise ValueError(
            f"method.name: {cfg.method.name} needs labels, but {_data_words(cfg)} has none; "
            "pick a self-supervised method or a folder with one sub-folder per class"
        )


def _check_method(cfg: RunConfig) -> type:
    from engine.methods import METHODS, build_method_config

    try:
        method = METHODS.get(cfg.method.name)
    except ValueError as exc:
        raise ValueError(f"method.name: {exc}") from None
    build_method_config(method, cfg.method.params)
    return method


def _check_names(cfg: RunConfig) -> None:
    from engine.data import DATASETS
    from engine.models import BACKBONES

    for key, registry, name in (("data.name", DATASETS, cfg.data.name),
                                ("model.backbone", BACKBONES, cfg.model.backbone)):
        try:
            registry.get(name)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None


@cache
def _trainable(backbone: str, image_size: int, width: int) -> bool:
    """Whether the backbone has parameters to train (built on the meta device: no memory)."""
    import torch

    from engine.models import build_backbone

    with torch.device("meta"):
        module = build_backbone(backbone, 3, image_size, width)
    return any(p.requires_grad for p in module.parameters())


def _check_start(cfg: RunConfig) -> None:
    """The weights a run starts from exist: another run's checkpoint (``model.init_from``,
    same backbone) or a pretrained weights file (``model.pretrained``)."""
    m = cfg.model
    if m.init_from and m.pretrained:
        raise ValueError("model.init_from and model.pretrained both name starting weights; "
                         "keep one")
    if m.init_from:
        from engine.encoder.parent import check_parent

        check_parent(m.init_from, m.backbone, m.width)
    elif m.pretrained:
        from engine.models.pretrained import weights_path

        weights_path(m.pretrained, m.backbone)


def _check_backbone(cfg: RunConfig) -> None:
    try:
        trainable = _trainable(cfg.model.backbone, cfg.data.image_size, cfg.model.width)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ValueError(f"model.backbone: {exc}") from None
    trains = cfg.train.epochs > 0 or cfg.train.max_seconds > 0
    if trains and not trainable:
        raise ValueError(f"model.backbone: {cfg.model.backbone} has no parameters to train; "
                         "set train.epochs=0 and train.max_seconds=0 to evaluate it as a "
                         "baseline")


def _check_views(cfg: RunConfig) -> None:
    from engine.augment import resolve_views

    try:
        views = resolve_views(cfg.augment)
    except (ValueError, KeyError, TypeError) as exc:
        text = str(exc).strip("'\"")
        key = "augment.views" if cfg.augment.views else "augment.preset"
        raise ValueError(text if text.startswith("augment.") else f"{key}: {text}") from None
    if not views:
        raise ValueError("augment: the run needs at least one view")


def _check_data(cfg: RunConfig, dataset: Dataset | None) -> int | None:
    """Labelled train images (None: not known before loading, taken as labelled)."""
    if dataset is not None:
        if len(dataset.train) < 2:
            raise ValueError(f"data: the train split of {_data_words(cfg)} has fewer than 2 "
                             "images")
        return int((dataset.train.labels >= 0).sum())
    if cfg.data.name != "folder":
        return None
    from engine.data import DataError
    from engine.data.folder import survey_folder

    try:
        return survey_folder(cfg.data)["labelled"]
    except DataError as exc:
        text = " ".join(str(exc).split())
        raise DataError(text if text.startswith("data.") else f"data.root: {text}") from None


def _data_words(cfg: RunConfig) -> str:
    if cfg.data.name == "folder":
        return f"the image folder {cfg.data.root}"
    return f"the data set {cfg.data.name!r}"
