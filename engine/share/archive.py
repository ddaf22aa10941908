"""A run as one archive, and back: hand a run to a colleague, who sees it as it was.

    <run_id>.zip
        <run_id>/config.json, summary.json, metrics.jsonl    the curves and figures
        <run_id>/snapshots/step_*.npz                        the maps
        <run_id>/checkpoints/last.pt                         the final checkpoint (optional)
        <run_id>/preprocessing.json                          what the encoder expects
        <run_id>/thumbnails.npz                              the map's images (optional)
        <run_id>/tracked.json                                a tracked run's own config
        <run_id>/share.json                                  format and a SHA-256 of each file

The thumbnails and ``preprocessing.json`` are what the run would otherwise read from its data
set, so on the other machine Explore and Compare draw the maps with their pictures, and the
encoder can be evaluated and exported, without the data set.

Importing trusts nothing in the file: every member must be one of the names above under one
valid run id (no absolute paths, no ``..``, no links), must match its checksum, and is written
by this code into a temporary folder that becomes the run only when all of it checked out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from engine.share.thumbnails import THUMBNAILS, write_thumbnails
from engine.train.store import LIVE, RUN_ID, RunDir, RunStore

#: the layout version of an archive
FORMAT = 1
MANIFEST = "share.json"
#: the files of a run an archive may hold, relative to the run's folder
MEMBER = re.compile(r"(config\.json|summary\.json|metrics\.jsonl|tracked\.json|"
                    r"preprocessing\.json|thumbnails\.npz|share\.json|"
                    r"snapshots/step_\d{7}\.npz|checkpoints/last\.pt)")
#: an archive whose files add up to more than this is refused (a zip bomb, or not a run)
MAX_BYTES = 8 << 30


def export_run(run: RunDir, out: str | Path, thumbnails: bool = True,
               checkpoint: bool = True) -> Path:
    """Write ``run`` as one zip archive at ``out`` (a folder: ``<out>/<run_id>.zip``);
    returns its path. ``thumbnails``: add the snapshot images (needs the data set here);
    ``checkpoint``: add ``checkpoints/last.pt``."""
    out = Path(out)
    path = out / f"{run.id}.zip" if out.is_dir() or not out.suffix else out
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {p.relative_to(run.path).as_posix(): p for p in sorted(run.path.rglob("*"))
             if p.is_file() and not p.is_symlink()}
    files = {k: v for k, v in files.items() if MEMBER.fullmatch(k) and k != MANIFEST
             and (checkpoint or not k.startswith("checkpoints/"))}
    if "config.json" not in files:
        raise ValueError(f"{run.path} is not a run (no config.json)")
    with tempfile.TemporaryDirectory() as tmp:
        extra = _extras(run, Path(tmp), thumbnails and THUMBNAILS not in files,
                        "preprocessing.json" not in files and run.checkpoint_path() is not None)
        files.update(extra)
        digests = {name: _sha256(p) for name, p in files.items()}
        manifest = {"format": FORMAT, "run": run.id, "exported": time.time(), "files": digests}
        tmp_zip = path.with_name(f".{path.name}.tmp")
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, p in files.items():
                zf.write(p, f"{run.id}/{name}")
            zf.writestr(f"{run.id}/{MANIFEST}", json.dumps(manifest, indent=2))
        os.replace(tmp_zip, path)
    return path


def _extras(run: RunDir, tmp: Path, thumbnails: bool, preprocessing: bool) -> dict[str, Path]:
    """The thumbnails and preprocessing a run reads from its data set, written to ``tmp``
    (nothing when the data set cannot be loaded here: the archive goes without them)."""
    extra: dict[str, Path] = {}
    steps = run.snapshots()
    carries = steps and "images" in run.load_snapshot(steps[-1])
    if not (thumbnails and steps and not carries) and not preprocessing:
        return extra
    from engine.data import load_dataset

    cfg = run.config()
    try:
        ds = load_dataset(cfg.data)
    except Exception:  # noqa: BLE001 — the data set is elsewhere: share what there is
        return extra
    if thumbnails and steps and not carries:
        index = np.unique(np.concatenate([run.load_snapshot(s)["index"] for s in steps]))
        write_thumbnails(tmp / THUMBNAILS, index, ds.test.images[index].numpy(),
                         list(ds.class_names), dict(ds.attribute_names))
        extra[THUMBNAILS] = tmp / THUMBNAILS
    if preprocessing:
        from engine.encoder.load import preprocessing as measure
        from engine.encoder.load import write_preprocessing

        write_preprocessing(tmp / "preprocessing.json", measure(run, cfg))
        extra["preprocessing.json"] = tmp / "preprocessing.json"
    return extra


def import_run(archive: str | Path, store: RunStore) -> RunDir:
    """Unpack a run archive into ``store``; returns the new run. ``ValueError`` naming the
    archive for anything that is not a whole, unaltered run archive; ``FileExistsError``
    when the store already has a run with its id."""
    archive = Path(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{archive} is not a run archive ({exc})") from None
    with zf:
        run_id, members = _check_members(archive, zf)
        target = store.root / run_id
        if target.exists():
            raise FileExistsError(f"a run {run_id} is already in {store.root}")
        manifest = _manifest(archive, zf, run_id, members)
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=store.root))
        try:
            # config.json last: until then the staging folder is no run to a page listing runs
            for name, info in sorted(members.items(), key=lambda m: m[0] == "config.json"):
                dest = staging.joinpath(*PurePosixPath(name).parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                if name != MANIFEST and _sha256(dest) != manifest["files"].get(name):
                    raise ValueError(f"{archive}: {name} does not match its checksum "
                                     "(the archive is damaged or was altered)")
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    run = RunDir(target)
    run.config()  # a run archive with an unreadable config is refused: ValueError
    summary: dict[str, Any] = {"imported": time.time(), "imported_from": archive.name}
    if run.summary().get("status") in LIVE:
        summary.update(status="interrupted", reason="it was exported while it still ran",
                       resumable=False)
    run.write_summary(summary)
    return run


def _check_members(archive: Path, zf: zipfile.ZipFile) -> tuple[str, dict[str, zipfile.ZipInfo]]:
    """The run id and the members by their name inside the run, every one checked."""
    run_ids, members, total = set(), {}, 0
    for info in zf.infolist():
        name = info.filename
        parts = PurePosixPath(name).parts
        kind = stat.S_IFMT(info.external_attr >> 16)
        bad = (not name or name.startswith("/") or "\\" in name or ":" in parts[0]
               or any(p in ("", ".", "..") for p in parts) or len(parts) < 2
               or (kind and kind != stat.S_IFREG and not info.is_dir()))
        if info.is_dir() and not bad:
            continue
        inner = "/".join(parts[1:])
        if bad or not RUN_ID.fullmatch(parts[0]) or not MEMBER.fullmatch(inner):
            raise ValueError(f"{archive}: unexpected member {name!r}; a run archive holds only "
                             "a run's files under its id")
        run_ids.add(parts[0])
        members[inner] = info
        total += info.file_size
    if len(run_ids) != 1:
        raise ValueError(f"{archive}: a run archive holds exactly one run (found "
                         f"{len(run_ids)})")
    if total > MAX_BYTES:
        raise ValueError(f"{archive}: its files add up to {total / 2**30:.1f} GiB, more than a "
                         f"run archive may ({MAX_BYTES / 2**30:.0f} GiB)")
    return run_ids.pop(), members


def _manifest(archive: Path, zf: zipfile.ZipFile, run_id: str,
              members: dict[str, zipfile.ZipInfo]) -> dict[str, Any]:
    if MANIFEST not in members or "config.json" not in members:
        raise ValueError(f"{archive}: not a run archive (no {run_id}/{MANIFEST} or config.json)")
    try:
        manifest = json.loads(zf.read(members[MANIFEST]))
    except (ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{archive}: its {MANIFEST} cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{archive}: archive format {manifest.get('format')!r} is not one this "
                         f"version reads ({FORMAT})")
    listed = set(manifest.get("files") or {})
    present = set(members) - {MANIFEST}
    if listed != present:
        missing = sorted(listed - present) or sorted(present - listed)
        raise ValueError(f"{archive}: its files and its {MANIFEST} disagree ({', '.join(missing)})")
    return manifest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

