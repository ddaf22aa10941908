"""How long runs take: what the queue's estimates of a start are made of."""

from __future__ import annotations

import heapq
from typing import Any

from engine.config import RunConfig


def budget(cfg: RunConfig) -> float | None:
    """Seconds a run will take once started, when its config bounds it: its time budget (its
    epochs may end it sooner); 0 for a run that only evaluates (no epochs, no time budget);
    None when only epochs bound it (the pace is not known before it runs)."""
    if cfg.train.max_seconds > 0:
        return float(cfg.train.max_seconds)
    return 0.0 if cfg.train.epochs == 0 else None


def remaining(
    cfg: RunConfig, last_step: dict[str, Any] | None, since: float, now: float
) -> float | None:
    """Seconds a started run still needs: its time budget minus the time it has trained, or
    its epochs to go at the pace of its last step event; the smaller when both are known.
    ``since``: when it started training (the fallback clock before its first step event)."""
    train = cfg.train
    if train.epochs == 0 and train.max_seconds == 0:
        return 0.0
    last = last_step
    if last is not None and "elapsed" in last and "time" in last:
        elapsed = float(last["elapsed"]) + max(0.0, now - float(last["time"]))
    else:
        elapsed = max(0.0, now - since)
    guesses = []
    if train.max_seconds > 0:
        guesses.append(max(0.0, train.max_seconds - elapsed))
    if train.epochs > 0 and last is not None and float(last.get("epoch", 0)) > 0:
        done = min(1.0, float(last["epoch"]) / train.epochs)
        to_go = float(last.get("elapsed", elapsed)) * (1 - done) / done
        guesses.append(max(0.0, to_go - max(0.0, now - float(last.get("time", now)))))
    return min(guesses) if guesses else None


def start_after(free_at: list[float | None], ahead: list[float | None]) -> float | None:
    """Seconds until a queued run starts: each slot is free after its ``free_at`` seconds; the
    runs ``ahead`` of it in the queue take the first free slot in turn for their budgets.
    None when a time it depends on is unknown, or there is no slot."""
    if not free_at or None in free_at or None in ahead:
        return None
    slots = [float(t) for t in free_at if t is not None]
    heapq.heapify(slots)
    for seconds in ahead:
        heapq.heappush(slots, heapq.heappop(slots) + float(seconds or 0.0))
    return slots[0]
