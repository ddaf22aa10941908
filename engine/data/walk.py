"""Walking an image folder safely: a cap on the entries visited, and no link out of it.

One :class:`FolderWalk` serves one load of one folder: every entry it visits counts against
``SSL_STUDIO_MAX_FILES`` (``engine.data.roots.max_files``) and it stops with a
:class:`~engine.data.base.DataError` past it. In LAN mode (``engine.data.roots.lan_mode``) a
symbolic link (file or folder) is followed only when its target lies inside the folder; outside
LAN mode links are followed as the user made them. A folder reached twice through links is
walked once.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.data.base import DataError
from engine.data.roots import inside, lan_mode, max_files

IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


def visible(name: str) -> bool:
    """Not a hidden file nor an operating system's own (``__MACOSX``, ``Thumbs.db``)."""
    return not name.startswith(".") and name not in IGNORED_NAMES


class FolderWalk:
    """Entries under ``root``, counted against a cap, links confined to ``root`` in LAN mode."""

    def __init__(self, root: Path, cap: int | None = None, confine: bool | None = None) -> None:
        self.root = Path(root)
        self.real_root = self.root.resolve()
        self.cap = max_files() if cap is None else cap
        self.confine = lan_mode() if confine is None else confine
        self.count = 0
        self._refused: dict[str, str] = {}  # real path of a link left out -> "path (why)"
        self._walked: set[str] = set()

    def _tick(self) -> None:
        self.count += 1
        if self.count > self.cap:
            raise DataError(
                f"{self.root} holds more than {self.cap:,} files and folders; reading stopped "
                "there. Point data.root at a smaller folder (the limit is SSL_STUDIO_MAX_FILES)"
            )

    def _followed(self, entry: os.DirEntry) -> bool:
        """A link is followed only when its target lies inside the root (LAN mode)."""
        if not self.confine or not entry.is_symlink():
            return True
        return inside(os.path.realpath(entry.path), self.real_root)

    def entries(self, folder: Path) -> tuple[list[str], list[str]]:
        """(sub-folder names, file names) directly in ``folder``, visible ones, sorted."""
        dirs, files = [], []
        with os.scandir(folder) as it:
            for entry in it:
                if not visible(entry.name):
                    continue
                self._tick()
                if not self._followed(entry):
                    rel = os.path.relpath(entry.path, self.root).replace(os.sep, "/")
                    link = os.path.join(os.path.realpath(folder), entry.name)
                    self._refused.setdefault(link, f"{rel} (a link out of the folder)")
                    continue
                try:
                    if entry.is_dir():
                        dirs.append(entry.name)
                    elif entry.is_file():
                        files.append(entry.name)
                except OSError:
                    continue
        return sorted(dirs), sorted(files)

    @property
    def refused(self) -> list[str]:
        """The links left out so far, once each: "path (a link out of the folder)"."""
        return list(self._refused.values())

    def files_under(self, folder: Path) -> list[str]:
        """Every file under ``folder`` (depth first, names in order), as paths relative to the
        root."""
        found: list[str] = []
        stack = [Path(folder)]
        while stack:
            current = stack.pop()
            real = os.path.realpath(current)
            if real in self._walked:  # a link loop, or a folder reached twice
                continue
            self._walked.add(real)
            dirs, files = self.entries(current)
            rel = os.path.relpath(current, self.root).replace(os.sep, "/")
            prefix = "" if rel == "." else rel + "/"
            found += [prefix + name for name in files]
            stack += [current / d for d in reversed(dirs)]  # depth first, in name order
        return found
