"""A thread-safe, append-only event log that any number of readers follow with a cursor.

The training thread appends small events (step, eval, diagnostics, status); large payloads
(embedding snapshots, checkpoints) go to the run directory only.
"""

from __future__ import annotations

import threading
from typing import Any


class EventLog:
    """Append-only list of JSON-able dicts.

    Each reader keeps its own cursor: ``events, cursor = log.read(cursor)``.
    """

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def append(self, event: dict[str, Any]) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    def read(self, cursor: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events since ``cursor`` and the new cursor."""
        with self._lock:
            new = self._events[cursor:]
            return new, cursor + len(new)

    def wait(self, cursor: int, timeout: float) -> bool:
        """Block until there is an event past ``cursor`` (True) or the timeout passes."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._events) > cursor, timeout)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)
