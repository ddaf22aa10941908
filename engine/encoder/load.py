"""A run's trained encoder, rebuilt from its checkpoint, with the preprocessing it expects.

The network sees images as the trainer fed them: uint8 ``(N, C, H, W)`` at the run's
``data.image_size``, scaled to ``[0, 1]``, minus the per-channel mean, over the per-channel std
of the run's train split (``engine.train.loop``). Those statistics come from the run's data set
when it can be loaded, else from the ``preprocessing.json`` an exported or imported run carries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.config import RunConfig
from engine.train import checkpoint
from engine.train.store import RunDir, RunStore

#: the file that holds what the encoder expects (beside an export, and in a shared run)
PREPROCESSING = "preprocessing.json"


@dataclass
class TrainedEncoder:
    """A run's method (backbone and heads) in eval mode on the CPU, and its input contract.

    preprocessing: ``image_size``, ``channels``, ``mean``, ``std`` (per channel, on the
    ``[0, 1]`` scale), ``num_classes``, ``backbone``, ``width``, ``feature_dim``.
    """

    run: RunDir
    cfg: RunConfig
    step: int
    method: Any  # engine.methods.Method
    preprocessing: dict[str, Any]

    @property
    def backbone(self) -> torch.nn.Module:
        return self.method.backbone

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float32 (N, C, H, W), as the network saw images in training."""
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        p = self.preprocessing
        if images.shape[1] != p["channels"]:
            raise ValueError(f"this encoder takes {p['channels']}-channel images, got "
                             f"{images.shape[1]}")
        mean = torch.tensor(p["mean"]).view(1, -1, 1, 1)
        std = torch.tensor(p["std"]).view(1, -1, 1, 1)
        return (images.float() / 255.0 - mean) / std

    @torch.no_grad()
    def embed(self, images: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
        """``{"h": (N, D), "z": (N, d)}`` (``z`` where the method has a projector) of uint8
        images (N, C, H, W), in batches."""
        out: dict[str, list[torch.Tensor]] = {}
        for start in range(0, len(images), batch_size):
            x = self.normalise(images[start : start + batch_size])
            for key, value in self.method.embed(x).items():
                out.setdefault(key, []).append(value.float())
        return {k: torch.cat(v) for k, v in out.items()}


def load_encoder(store: RunStore, run_id: str) -> TrainedEncoder:
    """The trained encoder of ``run_id``. ``FileNotFoundError`` for a missing run,
    ``ValueError`` for a run without a usable checkpoint, each naming the run."""
    run = store.get(run_id)
    path = run.checkpoint_path()
    if path is None:
        why = ("a tracked run keeps no weights" if (run.path / "tracked.json").exists()
               else "it has not written one yet")
        raise ValueError(f"run {run_id} has no checkpoint (checkpoints/last.pt): {why}")
    try:
        state = checkpoint.load(path)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 — a torn or foreign file: say which and why
        raise ValueError(f"run {run_id}: its checkpoint cannot be read ({exc})") from None
    cfg = run.config()
    prep = preprocessing(run, cfg)
    try:
        method = rebuild_method(cfg, prep["channels"], prep["image_size"],
                                int(prep["num_classes"]), state)
    except RuntimeError as exc:
        raise ValueError(f"run {run_id}: its checkpoint does not fit its configuration "
                         f"({str(exc).splitlines()[0]})") from None
    method.eval()
    prep["feature_dim"] = int(getattr(method.backbone, "out_dim", 0))
    return TrainedEncoder(run, cfg, int(state["step"]), method, prep)


def rebuild_method(cfg: RunConfig, channels: int, image_size: int, num_classes: int,
                   state: dict[str, Any] | None) -> Any:
    """The run's method (backbone and heads) for images of ``channels`` x ``image_size`` px,
    with the weights of checkpoint ``state`` (None: as the seed builds it, untrained).
    ``RuntimeError`` when the weights do not fit."""
    from engine.methods import build_method
    from engine.models import build_backbone

    backbone = build_backbone(cfg.model.backbone, channels, image_size, cfg.model.width)
    method = build_method(cfg.method.name, cfg.method.params, backbone, max(num_classes, 1))
    if state is not None:
        method.load_state_dict(state["method"])
    return method


def preprocessing(run: RunDir, cfg: RunConfig) -> dict[str, Any]:
    """What the encoder of ``run`` expects (see :class:`TrainedEncoder`): from the run's
    ``preprocessing.json`` when it has one, else measured on its data set as the trainer
    did."""
    path = run.path / PREPROCESSING
    if path.exists():
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise ValueError(f"run {run.id}: {PREPROCESSING} cannot be read ({exc})") from None
    from engine.data import load_dataset
    from engine.train.loop import channel_stats

    try:
        ds = load_dataset(cfg.data)
    except Exception as exc:  # noqa: BLE001 — the reason, with what would help
        raise ValueError(f"run {run.id}: its data set {cfg.data.name!r} cannot be loaded to "
                         f"measure the normalisation it trained with ({exc})") from None
    mean, std = channel_stats(ds.train.images)
    return {"image_size": ds.image_size, "channels": ds.channels, "mean": mean, "std": std,
            "num_classes": ds.num_classes, "backbone": cfg.model.backbone,
            "width": cfg.model.width}


def write_preprocessing(path: Path, prep: dict[str, Any]) -> None:
    """``preprocessing.json``: the contract of :class:`TrainedEncoder`, with the recipe in
    words for whoever loads the encoder elsewhere."""
    from engine.train.store import atomic_write_json

    atomic_write_json(path, {
        **prep,
        "input": "float32 (N, C, H, W) = (uint8 image / 255 - mean) / std, per channel",
        "resize": f"shorter side to {prep['image_size']} px, then a centre crop",
        "output": f"h: float32 (N, {prep.get('feature_dim', '?')}), the backbone's feature",
    })
