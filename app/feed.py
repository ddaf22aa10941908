"""A run's events so far, for drawing, read from its ``metrics.jsonl`` through
:class:`engine.train.metrics_reader.MetricsReader` (incremental; a run resumed from a checkpoint
rewrites its file and the feed starts again). The files are the record whoever trains the run (this
process, the CLI, another machine's job), so one path serves them all. One feed per run is shared
by every browser session.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from app.state import registry, runs_root
from engine.train.metrics_reader import MetricsReader


@dataclass
class Feed:
    """The events of one run, grouped by type."""

    run_id: str
    by_type: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _reader: MetricsReader | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self) -> Feed:
        """Take in whatever arrived since the last call."""
        with self._lock:
            if self._reader is None:
                self._reader = MetricsReader(registry().run(self.run_id))
            events, restarted = self._reader.read()
            if restarted:
                self.by_type = {}
            for event in events:
                self.by_type.setdefault(event.get("type", "?"), []).append(event)
        return self

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


#: feeds kept in memory (the most recently drawn); an older one is read again from its file
MAX_FEEDS = 64


def feed(run_id: str) -> Feed:
    """The shared, up-to-date feed of ``run_id``."""
    feeds, lock = _feeds(runs_root())
    with lock:
        f = feeds.pop(run_id, None) or Feed(run_id)
        feeds[run_id] = f  # now the most recent
        while len(feeds) > MAX_FEEDS:
            del feeds[next(iter(feeds))]
    return f.update()


def forget(run_id: str) -> None:
    feeds, lock = _feeds(runs_root())
    with lock:
        feeds.pop(run_id, None)
