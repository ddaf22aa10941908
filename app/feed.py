"""A run's events so far, for drawing: followed from the live event log, or from metrics.jsonl.

A run started by this process is followed through its runner's :class:`EventLog` (cursor
reads, no disk); any other run (an earlier app session, the CLI, another process still
training) through its ``metrics.jsonl``, read incrementally. One feed per run is shared by every
browser session.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from app.state import registry, runs_root


@dataclass
class Feed:
    """The events of one run, grouped by type."""

    run_id: str
    by_type: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _cursor: int = 0
    _offset: int = 0
    _source: str = ""  # "log" or "disk", fixed by where the first events are found
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self) -> Feed:
        """Take in whatever arrived since the last call."""
        with self._lock:
            runner = registry().live(self.run_id)
            if not self._source and runner is not None and len(runner.log):
                self._source = "log"
            if self._source == "log" and runner is not None:
                events, self._cursor = runner.log.read(self._cursor)
            else:
                # Runs of other processes; also a live run whose event log stays empty (the
                # files are the record either way, written before the log is told).
                events = self._read_disk()
                if events:
                    self._source = "disk"
            for event in events:
                self.by_type.setdefault(event.get("type", "?"), []).append(event)
        return self

    def _read_disk(self) -> list[dict[str, Any]]:
        run = registry().run(self.run_id)
        path = run.path / "metrics.jsonl"
        try:
            with open(path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1  # a torn last line waits for its end
        self._offset += end
        events = []
        for line in chunk[:end].splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events

    def events(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.by_type.get(kind, ()))

    def last(self, kind: str) -> dict[str, Any] | None:
        with self._lock:
            items = self.by_type.get(kind)
            return items[-1] if items else None


@st.cache_resource(show_spinner=False)
def _feeds(root: str) -> tuple[dict[str, Feed], threading.Lock]:
    return {}, threading.Lock()


def feed(run_id: str) -> Feed:
    """The shared, up-to-date feed of ``run_id``."""
    feeds, lock = _feeds(runs_root())
    with lock:
        f = feeds.get(run_id)
        if f is None:
            f = feeds[run_id] = Feed(run_id)
    return f.update()


def forget(run_id: str) -> None:
    feeds, lock = _feeds(runs_root())
    with lock:
        feeds.pop(run_id, None)
