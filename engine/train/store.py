"""Runs on disk: one directory per run, written atomically, readable after any restart.

    runs/<run_id>/
        config.json         the RunConfig
        metrics.jsonl       one event a line (step, eval, diagnostics, status)
        summary.json        status and final metrics (written at start as "running", then
                            updated; a run whose process died shows as "interrupted")
        checkpoints/last.pt model and optimiser state
        snapshots/step_000123.npz  embeddings h (and z) of a fixed set of test images
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import RunConfig


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default)
    atomic_write_bytes(path, text.encode())


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def new_run_id(cfg: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "-", f"{cfg.method.name}-{cfg.data.name}".lower()).strip("-")
    return f"{stamp}-{slug}-{os.urandom(2).hex()}"


@dataclass
class RunDir:
    """One run's directory."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    # -- writing ----------------------------------------------------------------------------
    def create(self, cfg: RunConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=False)
        atomic_write_json(self.path / "config.json", cfg.to_dict())
        self.write_summary({"status": "running", "created": time.time()})

    def append_metric(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, default=_json_default)
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def write_summary(self, summary: dict[str, Any]) -> None:
        merged = {**self.summary(), **summary}
        atomic_write_json(self.path / "summary.json", merged)

    def save_snapshot(self, step: int, arrays: dict[str, np.ndarray]) -> Path:
        path = self.path / "snapshots" / f"step_{step:07d}.npz"
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())
        return path

    def save_checkpoint(self, state: dict[str, Any], name: str = "last.pt") -> Path:
        import torch

        path = self.path / "checkpoints" / name
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(path, buf.getvalue())
        return path

    # -- reading ----------------------------------------------------------------------------
    def config(self) -> RunConfig:
        return RunConfig.from_dict(json.loads((self.path / "config.json").read_text()))

    def summary(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "summary.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def metrics(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Events from metrics.jsonl, optionally only those of one ``type``; a torn last line
        (process killed mid-write) is skipped."""
        out = []
        try:
            with open(self.path / "metrics.jsonl", encoding="utf-8") as f:
                for line in f:
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if kind is None or event.get("type") == kind:
                        out.append(event)
        except FileNotFoundError:
            pass
        return out

    def snapshots(self) -> list[int]:
        """Steps that have an embedding snapshot, oldest first."""
        d = self.path / "snapshots"
        if not d.is_dir():
            return []
        return sorted(int(p.stem.split("_")[1]) for p in d.glob("step_*.npz"))

    def load_snapshot(self, step: int | None = None) -> dict[str, np.ndarray]:
        steps = self.snapshots()
        if not steps:
            raise FileNotFoundError(f"run {self.id} has no embedding snapshot yet")
        step = steps[-1] if step is None else step
        with np.load(self.path / "snapshots" / f"step_{step:07d}.npz") as z:
            return {k: z[k] for k in z.files}

    def checkpoint_path(self) -> Path | None:
        p = self.path / "checkpoints" / "last.pt"
        return p if p.exists() else None

    def zip_bytes(self) -> bytes:
        """The whole run directory as a zip archive (for download)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(self.path.rglob("*")):
                if p.is_file() and not p.name.endswith(".tmp"):
                    zf.write(p, Path(self.id) / p.relative_to(self.path))
        return buf.getvalue()


class RunStore:
    """All runs under one directory (default ``./runs``, or ``$SSL_STUDIO_RUNS``)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root or os.environ.get("SSL_STUDIO_RUNS", "runs")).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, cfg: RunConfig) -> RunDir:
        run = RunDir(self.root / new_run_id(cfg))
        run.create(cfg)
        return run

    def get(self, run_id: str) -> RunDir:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", run_id or ""):
            raise ValueError(f"not a run id: {run_id!r}")
        run = RunDir(self.root / run_id)
        if not (run.path / "config.json").exists():
            raise FileNotFoundError(f"no run {run_id!r} in {self.root}")
        return run

    def list(self) -> list[RunDir]:
        """Every run with a config, newest first."""
        runs = [RunDir(p) for p in self.root.iterdir() if (p / "config.json").exists()]
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def delete(self, run_id: str) -> None:
        shutil.rmtree(self.get(run_id).path)
