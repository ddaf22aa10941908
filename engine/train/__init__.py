"""Training: the loop (events, no threads, no I/O), the runner (threads, recording), the store."""

from engine.train.events import EventLog
from engine.train.store import RunDir, RunStore

__all__ = ["EventLog", "RunDir", "RunStore"]
