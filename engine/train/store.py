"""Runs on disk: one directory per run, written atomically, readable after any restart.

    runs/<run_id>/
        config.json         the RunConfig
        metrics.jsonl       one event a line (step, eval, diagnostics, status)
        summary.json        status and final metrics, and who owns the run while it is live:
                            owner, pid, host, heartbeat (refreshed at least every 5 s), reason,
                            error, resumable
        checkpoints/last.pt everything to continue the run (``engine.train.checkpoint``)
        snapshots/step_000123.npz  embeddings h (and z) of a fixed set of test images
        maps/umap_step_…npy the app's UMAPs of the snapshots (``engine.eval.maps``)

A run directory tells the truth: :meth:`RunDir.status` reads a live status whose process is
gone (dead pid on this host, or a heartbeat older than :data:`STALE_SECONDS`) as
``interrupted``, and :meth:`RunStore.reconcile` writes that down.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import RunConfig

#: statuses of a run whose owning process is (supposed to be) working on it
LIVE = ("queued", "loading", "running", "paused")
#: a live run whose heartbeat is older than this (seconds) is an orphan
STALE_SECONDS = 30.0
#: what a run id looks like (a directory name, never a path)
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: summary.json is read, merged and replaced under this lock (runner, heartbeat, UI threads)
_SUMMARY_LOCK = threading.RLock()


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
        _READS.forget(path)
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


def new_run_id(cfg: RunConfig, created: float | None = None) -> str:
    """``20261206-141502-simclr-shapes-3f2a``: the creation time (``created``, now by default)
    to the second, method, data set and a random suffix."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(created))
    slug = re.sub(r"[^a-z0-9]+", "-", f"{cfg.method.name}-{cfg.data.name}".lower()).strip("-")
    return f"{stamp}-{slug}-{os.urandom(2).hex()}"


def owner_fields() -> dict[str, Any]:
    """This process as a run's owner: pid, host and a fresh heartbeat."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "heartbeat": time.time()}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return True


class _ParsedFiles:
    """Parsed small files, kept while the file on disk is unchanged (same inode, size and
    modification time; every write here replaces the file), so pages that label hundreds of
    runs at every rerun pay one ``stat`` a file, not a read and a parse. Bounded, oldest out."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: dict[Path, tuple[tuple[int, int, int], Any]] = {}
        self._lock = threading.Lock()

    def forget(self, path: Path) -> None:
        """Drop ``path`` (this process just replaced it: the next read parses it again)."""
        with self._lock:
            self._items.pop(path, None)

    def get(self, path: Path, parse: Any) -> Any:
        st = os.stat(path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._items.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = parse(path.read_text())
        with self._lock:
            self._items.pop(path, None)
            self._items[path] = (stamp, value)
            while len(self._items) > self.size:
                del self._items[next(iter(self._items))]
        return value


def _parse_config(text: str) -> RunConfig:
    return RunConfig.from_dict(json.loads(text))


_READS = _ParsedFiles()


@dataclass
class RunDir:
    """One run's directory."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    # -- writing ----------------------------------------------------------------------------
    def create(self, cfg: RunConfig, owner: str = "", status: str = "queued",
               created: float | None = None) -> None:
        """Make the directory with its config and a summary owned by this process
        (``created``: the time its id was made from, now by default)."""
        self.path.mkdir(parents=True, exist_ok=False)
        atomic_write_json(self.path / "config.json", cfg.to_dict())
        self.write_summary({"status": status, "owner": owner,
                            "created": time.time() if created is None else created,
                            **owner_fields()})

    def append_metric(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, default=_json_default)
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def write_summary(self, summary: dict[str, Any], drop: tuple[str, ...] = ()) -> None:
        """Merge ``summary`` into summary.json (keys in ``drop`` removed), atomically."""
        with _SUMMARY_LOCK:
            merged = {k: v for k, v in self.summary().items() if k not in drop}
            atomic_write_json(self.path / "summary.json", {**merged, **summary})

    def beat(self) -> bool:
        """Refresh the heartbeat (and this process as the owner) while the run is live; False
        (nothing written) once it has ended."""
        with _SUMMARY_LOCK:
            if self.summary().get("status") not in LIVE:
                return False
            self.write_summary(owner_fields())
            return True

    def truncate_metrics(self, step: int) -> None:
        """Cut metrics.jsonl back to what a checkpoint at ``step`` had seen: every event up to
        the first one past ``step``; ``finished`` and ``failed`` events and torn lines go too.
        Snapshots past ``step`` are deleted, and their maps. Atomic: a crash leaves the old or
        the new file."""
        kept = []
        for event in self.metrics():
            if isinstance(event.get("step"), int | float) and event["step"] > step:
                break
            if event.get("type") not in ("finished", "failed"):
                kept.append(json.dumps(event, default=_json_default) + "\n")
        atomic_write_bytes(self.path / "metrics.jsonl", "".join(kept).encode())
        for s in self.snapshots():
            if s > step:
                (self.path / "snapshots" / f"step_{s:07d}.npz").unlink(missing_ok=True)
        for path in (self.path / "maps").glob("*_step_*"):  # umap_step_0000123_h_<digest>.npy
            of = re.search(r"_step_(\d+)_", path.name)
            if of and int(of.group(1)) > step:
                path.unlink(missing_ok=True)

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
        """The run's configuration; ``ValueError`` naming the run when config.json is missing,
        damaged or no longer valid."""
        try:
            return _READS.get(self.path / "config.json", _parse_config)
        except (OSError, ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"run {self.id}: its config.json cannot be read ({exc})") from None

    def summary(self) -> dict[str, Any]:
        try:
            return dict(_READS.get(self.path / "summary.json", json.loads))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def status(self) -> str:
        """The truthful status: the summary's, but ``interrupted`` for a live status whose
        owning process is gone (its pid dead on this host, or its heartbeat older than
        :data:`STALE_SECONDS`; a summary without a heartbeat counts from its file's age)."""
        summary = self.summary()
        status = str(summary.get("status", "unknown"))
        if status in LIVE and not self._owner_alive(summary):
            return "interrupted"
        return status

    def _owner_alive(self, summary: dict[str, Any]) -> bool:
        beat = summary.get("heartbeat")
        if not isinstance(beat, int | float):
            try:
                beat = (self.path / "summary.json").stat().st_mtime
            except OSError:
                return False
        if time.time() - beat > STALE_SECONDS:
            return False
        pid = summary.get("pid")
        if isinstance(pid, int) and summary.get("host") == socket.gethostname():
            return pid_alive(pid)
        return True

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
                    if isinstance(event, dict) and (kind is None or event.get("type") == kind):
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

    def create(self, cfg: RunConfig, owner: str = "", status: str = "queued") -> RunDir:
        """A new run directory (config.json and a summary with ``status`` and ``owner``)."""
        created = time.time()  # one moment for the id and the summary: labels show the id's time
        for _ in range(16):  # the suffix is random: two runs made in one second may draw the same
            run = RunDir(self.root / new_run_id(cfg, created))
            try:
                run.create(cfg, owner, status, created)
                return run
            except FileExistsError:
                continue
        raise FileExistsError(f"no free run id in {self.root} for {run.id} after 16 tries")

    def path_of(self, run_id: str) -> Path:
        """The directory of ``run_id`` under the root. ``ValueError("not a run id: ...")`` for
        anything but a plain name inside the root (paths, "..", absolute paths)."""
        ok = isinstance(run_id, str) and RUN_ID.fullmatch(run_id) and ".." not in run_id
        if ok:
            path = self.root / run_id
            ok = path.resolve().parent == self.root and not path.is_symlink()
        if not ok:
            raise ValueError(f"not a run id: {run_id!r}")
        return path

    def get(self, run_id: str) -> RunDir:
        run = RunDir(self.path_of(run_id))
        if not (run.path / "config.json").exists():
            raise FileNotFoundError(f"no run {run_id!r} in {self.root}")
        return run

    def stamp(self) -> int:
        """Changes when a run folder is made or deleted (the root's modification time): one
        ``stat`` tells a page whether its list of runs is out of date."""
        return self.root.stat().st_mtime_ns

    def list(self) -> list[RunDir]:
        """Every run with a config, newest first."""
        runs = [RunDir(p) for p in self.root.iterdir() if (p / "config.json").exists()]
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def delete(self, run_id: str) -> None:
        shutil.rmtree(self.get(run_id).path)

    def reconcile(self) -> list[str]:
        """Mark every orphan (a live status whose process is gone) ``interrupted`` on disk,
        resumable when it has a checkpoint; returns their ids."""
        orphans = []
        for run in self.list():
            with _SUMMARY_LOCK:
                if run.summary().get("status") in LIVE and run.status() == "interrupted":
                    run.write_summary({
                        "status": "interrupted", "ended": time.time(),
                        "reason": "the process that ran it ended",
                        "resumable": run.checkpoint_path() is not None,
                    })
                    orphans.append(run.id)
        return orphans
