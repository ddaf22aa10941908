"""A run that starts from another run's encoder (``model.init_from``): the second stage.

The parent is named by its run id (in the run store, ``SSL_STUDIO_RUNS`` or ``./runs``) or by
its run directory. Its checkpoint's backbone weights (``backbone.*`` of the method's state,
BatchNorm statistics included) are copied into the new run's backbone; the heads are the new
run's own. The parent's backbone and width must be the new run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from engine.config import RunConfig
from engine.train import checkpoint
from engine.train.store import RunDir, RunStore


def parent_run(ref: str, store: RunStore | None = None) -> RunDir:
    """The run ``ref`` names: a run directory, or a run id in ``store`` (default: the run
    store); a directory that is not there is looked up by its name (its id) in ``store``.
    ``ValueError`` naming it when there is none."""
    path = Path(ref).expanduser()
    if (path / "config.json").is_file():
        return RunDir(path.resolve())
    store = store or RunStore()
    try:  # by its id: also a run directory that has moved (an imported run names its old one)
        run = store.get(path.name)
    except (FileNotFoundError, ValueError):
        run = None
    if run is None or not (run.path / "config.json").is_file():
        raise ValueError(f"model.init_from: no run {ref!r} (neither a run directory nor a run "
                         f"id in {store.root})")
    return run


def parent_in(cfg: RunConfig, store: RunStore) -> RunConfig:
    """``cfg`` with ``model.init_from`` made the parent run's directory, a run id being looked
    up in ``store``: the runs folder the new run goes to (``--runs-dir``), not the default one.
    ``ValueError`` naming that folder when there is no such run."""
    ref = cfg.model.init_from
    if not ref:
        return cfg
    return cfg.with_overrides({"model.init_from": str(parent_run(ref, store).path)})


def check_parent(ref: str, backbone: str, width: int) -> RunDir:
    """The parent run, checked to have a checkpoint and the same backbone and width."""
    run = parent_run(ref)
    cfg = run.config()
    if (cfg.model.backbone, cfg.model.width) != (backbone, width):
        raise ValueError(f"model.init_from: run {run.id} trained model.backbone="
                         f"{cfg.model.backbone} model.width={cfg.model.width}; set the same "
                         "here")
    if run.checkpoint_path() is None:
        raise ValueError(f"model.init_from: run {run.id} has no checkpoint yet (it is still "
                         "running, or failed before its first)")
    return run


def load_parent(backbone: nn.Module, ref: str, backbone_name: str,
                width: int) -> dict[str, Any]:
    """Copy the backbone of run ``ref``'s last checkpoint into ``backbone`` (in place);
    returns ``{"run", "step"}``."""
    run = check_parent(ref, backbone_name, width)
    state = checkpoint.load(run.checkpoint_path())
    weights = {k.removeprefix("backbone."): v for k, v in state["method"].items()
               if k.startswith("backbone.")}
    backbone.load_state_dict(weights)
    return {"run": run.id, "step": int(state["step"])}
