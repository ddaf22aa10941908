"""How far the loading of a data set has got, told to whoever waits for it: the app (a
toast, ``app/load_toast.py``), a run's "Starting: ..." line, the command line.

    with progress.reporting(print):
        load_dataset(cfg)  # after a second: "reading images: 12,032 of 100,000, about 40 s left"

Loaders call :func:`tell` as they go; a load that takes under ``after`` seconds says nothing,
a longer one says how far it is every ``every`` seconds and once at the end. Today the folder
loader tells how many images it has read, a chunk of 256 at a time. The reporter is
called in the thread that calls :func:`tell` (the one that entered the block).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class _Reporter:
    def __init__(self, report: Callable[[str], None], every: float, after: float) -> None:
        self.report, self.every = report, every
        self.start = time.perf_counter()
        self.next = self.start + after
        self.spoke = False
        self.first: tuple[float, int] | None = None  # (time, done) of the first word told

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = (now, done)
        if done >= total:  # the end: said only after something was said
            if self.spoke:
                self.report(f"{what}: {total:,} of {total:,}")
            return
        if now < self.next:
            return
        self.spoke, self.next = True, now + self.every
        (t0, done0), left = self.first, ""
        if done > done0:  # the rate since the first word (what came before it was not this)
            left = f", about {(now - t0) / (done - done0) * (total - done):.0f} s left"
        self.report(f"{what}: {done:,} of {total:,}{left}")


_CURRENT: ContextVar[_Reporter | None] = ContextVar("data_progress", default=None)


#: seconds a load goes before it says anything, and between two words
AFTER_S, EVERY_S = 1.0, 2.0


@contextmanager
def reporting(report: Callable[[str], None], every: float | None = None,
              after: float | None = None) -> Iterator[None]:
    """Within the block, loaders' progress reaches ``report(message)`` (``every`` and
    ``after`` default to :data:`EVERY_S` and :data:`AFTER_S`)."""
    token = _CURRENT.set(_Reporter(report, EVERY_S if every is None else every,
                                   AFTER_S if after is None else after))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def tell(what: str, done: int, total: int) -> None:
    """``done`` of ``total`` items of ``what`` (e.g. "reading images") are done."""
    reporter = _CURRENT.get()
    if reporter is not None:
        reporter(what, done, total)
