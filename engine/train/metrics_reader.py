"""Following a run's ``metrics.jsonl`` while it grows, whoever writes it.

The one way the app reads a run's events: incremental (each call reads only the bytes added
since the last), tolerant of a torn last line (a writer killed mid-line), and aware of a
rewrite (a resumed run cuts its file back to its checkpoint, atomically: a new file), after
which the reader starts again from the top.
"""

from __future__ import annotations

import json
import os
from typing import Any

from engine.train.store import RunDir


class MetricsReader:
    """``events, restarted = reader.read()``: the events appended since the last call;
    ``restarted`` is True when the file was replaced and ``events`` are all of it again."""

    def __init__(self, run: RunDir) -> None:
        self.path = run.path / "metrics.jsonl"
        self._offset = 0
        self._inode: int | None = None

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                restarted = self._inode is not None and (
                    st.st_ino != self._inode or st.st_size < self._offset
                )
                if restarted:
                    self._offset = 0
                self._inode = st.st_ino
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return [], False
        end = chunk.rfind(b"\n") + 1  # a torn last line waits for its end
        self._offset += end
        events = []
        for line in chunk[:end].splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events, restarted
