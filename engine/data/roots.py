"""Which folders a server may read images from: the data-root allow-list of LAN mode.

A server that listens beyond localhost (``make run HOST=0.0.0.0`` sets ``SSL_STUDIO_LAN=1``)
reads image folders only inside its data roots: ``SSL_STUDIO_DATA_ROOTS``, an ``os.pathsep``
separated list (default: the project's ``data/`` folder). A folder path outside them is
refused before anything is read, with a message that says nothing about the refused path; a
relative path is taken inside the first root. Outside LAN mode every path is allowed.

Walking a folder (``engine.data.walk``) stops after ``SSL_STUDIO_MAX_FILES`` entries (default
200,000) in every mode, and in LAN mode never follows a link out of the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

LAN_ENV = "SSL_STUDIO_LAN"
ROOTS_ENV = "SSL_STUDIO_DATA_ROOTS"
MAX_FILES_ENV = "SSL_STUDIO_MAX_FILES"
#: the data root when ``SSL_STUDIO_DATA_ROOTS`` is unset (the Makefile creates it)
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "data"
DEFAULT_MAX_FILES = 200_000


class DataRootRefused(PermissionError, ValueError):
    """A folder outside the server's data roots (LAN mode). Both a ``PermissionError`` and a
    ``ValueError``, so callers that report bad settings report it too."""


def lan_mode() -> bool:
    """True when the server listens beyond localhost (``SSL_STUDIO_LAN=1``)."""
    return os.environ.get(LAN_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def allowed_roots() -> list[Path]:
    """The data roots, resolved (``SSL_STUDIO_DATA_ROOTS``, else the project's ``data/``)."""
    raw = [p for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    return [Path(p.strip()).expanduser().resolve() for p in raw] or [DEFAULT_ROOT.resolve()]


def max_files() -> int:
    """Entries a folder walk may visit before it stops (``SSL_STUDIO_MAX_FILES``)."""
    try:
        return max(1, int(os.environ.get(MAX_FILES_ENV, "") or DEFAULT_MAX_FILES))
    except ValueError:
        return DEFAULT_MAX_FILES


def inside(path: str | Path, root: str | Path) -> bool:
    """Whether the resolved ``path`` is ``root`` or lies under it (both already resolved)."""
    path, root = Path(path), Path(root)
    return path == root or root in path.parents


def check_allowed(raw: str | Path) -> Path:
    """The absolute path of a data folder or archive the server may read.

    In LAN mode the resolved path (links followed) must lie inside a data root, else
    :class:`DataRootRefused` is raised before the path is read or listed. Outside LAN mode
    any path is returned, made absolute.
    """
    path = Path(raw).expanduser()
    if not lan_mode():
        return path.absolute()
    roots = allowed_roots()
    if not path.is_absolute():
        path = roots[0] / path
    real = path.resolve()
    if any(inside(real, root) for root in roots):
        return real
    where = ", ".join(str(r) for r in roots)
    raise DataRootRefused(
        f"data.root: this server reads images only from its data folder(s) ({where}); "
        "choose a folder inside one of them"
    )
