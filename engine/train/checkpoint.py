"""What a checkpoint holds, and reading it back: everything a run needs to continue exactly.

A checkpoint (``checkpoints/last.pt`` in the run directory, written atomically) is a dict:

- ``format``: :data:`FORMAT`; ``step``: optimiser steps done; ``config``: the RunConfig dict
- ``method``: the method's ``state_dict`` (backbone, heads, EMA targets and queues: every
  method keeps its state in parameters and buffers)
- ``optimizer``: the optimiser's ``state_dict`` (None when nothing trains)
- ``clock``: ``seconds`` of the run's own time used (the time budget continues from it),
  ``train_seconds`` spent in steps and ``images_seen`` (for images per second)
- ``rng``: the device generator (augmentations), the generator that draws the data order as it
  was at the start of the current epoch, and torch's global generators
- ``evaluation``: the last evaluation's results and whether the step-0 evaluation was done

Resuming restores all of it and skips the first ``step % steps_per_epoch`` batches of the
current epoch, so the resumed run draws the same batches and views as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.train.schedule import Clock

if TYPE_CHECKING:
    from engine.train.loop import Trainer

#: the layout version of a checkpoint dict
FORMAT = 2


def global_rng_state() -> dict[str, Any]:
    """torch's global generators (CPU, and every CUDA device once CUDA is initialised)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def capture(trainer: Trainer) -> dict[str, Any]:
    """A checkpoint dict of ``trainer`` where it stands (see the module docstring); tensors
    stay where they are."""
    return {
        "format": FORMAT,
        "step": trainer.step,
        "config": trainer.cfg.to_dict(),
        "method": trainer.method.state_dict(),
        "optimizer": trainer.optimizer.state_dict() if trainer.optimizer is not None else None,
        "clock": {"seconds": trainer.clock.seconds, "train_seconds": trainer.train_seconds,
                  "images_seen": trainer.images_seen},
        "rng": {
            "device": trainer.generator.get_state(),
            "order": trainer.order.state_at(trainer.step),
            "global": global_rng_state(),
        },
        "evaluation": {"last": dict(trainer.last_eval),
                       "initial_done": trainer._initial is None},
    }


def restore(trainer: Trainer, state: dict[str, Any]) -> None:
    """Put ``trainer`` (freshly built from the same config) where ``state`` left its run."""
    trainer.method.load_state_dict(state["method"])
    if trainer.optimizer is not None and state["optimizer"] is not None:
        trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.step = trainer.resumed_from = int(state["step"])
    clock = state["clock"]
    trainer.clock = Clock(float(clock["seconds"]))
    trainer.train_seconds = float(clock["train_seconds"])
    trainer.images_seen = int(clock["images_seen"])
    rng = state["rng"]
    trainer.generator.set_state(rng["device"])
    trainer.order.restore(rng["order"], trainer.step)
    set_global_rng_state(rng["global"])
    trainer.last_eval = dict(state["evaluation"]["last"])
    if state["evaluation"]["initial_done"]:
        trainer._initial = None


def load(path: str | Path) -> dict[str, Any]:
    """A checkpoint dict from ``path``, tensors on the CPU. Raises ``ValueError`` for a file
    that is not a resumable checkpoint."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a checkpoint this version can resume from")
    return state
