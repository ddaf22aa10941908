"""A Lightning callback that tracks a LightningModule's training in SSL Studio (``engine.track``).

Needs Lightning (``lightning`` or ``pytorch_lightning``); importing this module without it
raises ``ImportError`` saying so. Nothing else in the engine imports it.

The contract with your module:

- ``training_step`` returns the loss, or a dict with ``"loss"`` and, for the collapse
  diagnostics, ``"z0"`` and ``"z1"``: (B, d) embeddings of two views of the same B images
  (row i of each from image i; the online projections, say). Any other one-element tensor in
  the dict is logged as a scalar of its own. The learning rate of the first optimiser is
  logged too.
- For the map and kNN, give the callback a fixed set of ``images`` (uint8 (N, C, H, W)) with
  ``labels``, and a ``transform`` from those to the module's input. The module's
  ``embed(x)`` returns ``{"h": (N, D), "z": (N, d)}`` (``z`` optional) or a tensor ``h``;
  without ``embed``, ``module.backbone(x)`` flattened is ``h``.

    callback = SSLStudioCallback("byol-lightly", runs_dir="runs", images=test_images,
                                 labels=test_labels, transform=normalise, method="byol")
    Trainer(callbacks=[callback]).fit(module, loader)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

try:
    import lightning.pytorch as pl
except ImportError:  # the older package name
    try:
        import pytorch_lightning as pl
    except ImportError:
        raise ImportError("engine.track.lightning needs Lightning: pip install lightning "
                          "(see examples/requirements.txt)") from None

from engine import track
from engine.train.recorder import explain


class SSLStudioCallback(pl.Callback):
    """Logs the loss every step, the views every ``views_every`` steps and the embeddings of
    ``images`` every ``embed_every`` steps (and at the end) to a tracked run; see the module
    docstring for what it takes from your module.

    Args:
        name, runs_dir, config, method, class_names: as :func:`engine.track.start` (the
            config defaults to the module's ``hparams``).
        images: uint8 (N, C, H, W) images embedded for the map and kNN, or None.
        labels: (N,) class codes of those images; transform: uint8 batch -> module input.
    """

    def __init__(self, name: str, runs_dir: str | Path | None = None, *,
                 config: dict[str, Any] | None = None, method: str = "",
                 class_names: list[str] | None = None, images: torch.Tensor | None = None,
                 labels: torch.Tensor | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 views_every: int = 20, embed_every: int = 200, batch_size: int = 256) -> None:
        super().__init__()
        self.name, self.runs_dir, self.config = name, runs_dir, config
        self.method, self.class_names = method, class_names
        self.images, self.labels, self.transform = images, labels, transform
        self.views_every, self.embed_every, self.batch_size = views_every, embed_every, batch_size
        self.run: track.Run | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.global_rank != 0:
            return
        config = self.config if self.config is not None else dict(getattr(pl_module, "hparams",
                                                                            {}) or {})
        total = trainer.estimated_stepping_batches
        self.run = track.start(
            self.name, config=_jsonable(config), runs_dir=self.runs_dir, method=self.method,
            class_names=self.class_names, total_steps=int(total) if total != float("inf")
            else None, parameters=sum(p.numel() for p in pl_module.parameters()),
            device=str(pl_module.device))
        self._embed(trainer, pl_module)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.run is None:
            return
        step = int(trainer.global_step)
        out = outputs if isinstance(outputs, dict) else {"loss": outputs}
        if out.get("loss") is None:
            return
        scalars = {k: v for k, v in out.items() if k not in ("loss", "z0", "z1", "h")
                   and isinstance(v, torch.Tensor | float | int) and _one(v)}
        if trainer.optimizers:
            scalars["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        self.run.log(step, loss=out["loss"], **scalars)
        if self.views_every and step % self.views_every == 0 and "z0" in out and "z1" in out:
            self.run.views(step, out["z0"], out["z1"], out.get("h"))
        if self.embed_every and step and step % self.embed_every == 0:
            self._embed(trainer, pl_module)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.run is not None:
            self._embed(trainer, pl_module)
            self.run.finish()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.run is not None:
            if isinstance(exception, KeyboardInterrupt):
                self.run.finish("stopped", "interrupted with Ctrl-C")
            else:
                self.run.fail(explain(exception))

    @torch.no_grad()
    def _embed(self, trainer: Any, module: Any) -> None:
        if self.run is None or self.images is None:
            return
        was_training = module.training
        module.eval()
        hs, zs = [], []
        try:
            for start in range(0, len(self.images), self.batch_size):
                x = self.images[start : start + self.batch_size]
                x = (self.transform(x) if self.transform else x.float() / 255).to(module.device)
                out = module.embed(x) if hasattr(module, "embed") else module.backbone(x)
                if isinstance(out, dict):
                    hs.append(out["h"].flatten(1).float().cpu())
                    if "z" in out:
                        zs.append(out["z"].float().cpu())
                else:
                    hs.append(out.flatten(1).float().cpu())
        finally:
            module.train(was_training)
        self.run.embeddings(int(trainer.global_step), h=torch.cat(hs),
                            z=torch.cat(zs) if zs else None, labels=self.labels,
                            images=self.images)


def _one(x: Any) -> bool:
    return not isinstance(x, torch.Tensor) or x.numel() == 1


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters as JSON can hold them (anything else as its text)."""
    import json

    out = {}
    for key, value in config.items():
        try:
            json.dumps(value)
            out[str(key)] = value
        except (TypeError, ValueError):
            out[str(key)] = repr(value)
    return out
