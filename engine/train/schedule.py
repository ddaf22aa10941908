"""The run's one progress clock: how far along a run is, and the learning rate it gives.

A run is bounded by steps, by seconds, or by both:

- ``train.epochs > 0``: at most ``ceil(epochs * steps_per_epoch)`` steps.
- ``train.max_seconds > 0``: at most that many seconds of the run's own time (time spent in
  the loop: training steps and evaluations; not time paused, nor time the process was down
  between an interruption and its resume).
- Both set: whichever comes first ends the run, and progress is the larger of the two
  fractions. ``epochs=10_000`` with a budget is therefore a time-bound run whose progress is
  the time fraction.
- ``train.epochs == 0`` and ``train.max_seconds > 0``: bounded by time only (no step bound).
- ``train.epochs == 0`` and ``train.max_seconds == 0``: nothing is trained; the untrained
  backbone is evaluated.

``progress`` of a step is computed once, before the step, from the steps done and the seconds
used so far (``k / K`` for step ``k`` of ``K``, as in BYOL's momentum schedule); the learning
rate, the method's ``on_step_end`` hook and the step event all receive that same value.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """Bounds of a run and the learning rate along it.

    ``total_steps``: the step bound (``math.inf`` when only time bounds the run);
    ``max_seconds``: the time bound (0 = none); ``warmup_steps``: linear warm-up length;
    ``base_lr``: the peak learning rate.
    """

    total_steps: float
    max_seconds: float
    warmup_steps: float
    base_lr: float

    @classmethod
    def for_run(
        cls, epochs: float, max_seconds: float, steps_per_epoch: int, warmup_epochs: float,
        base_lr: float,
    ) -> Schedule:
        """The schedule of a run with these ``train`` settings (see the module docstring)."""
        if epochs > 0:
            total: float = int(math.ceil(epochs * steps_per_epoch))
        else:
            total = math.inf if max_seconds > 0 else 0
        return cls(total, max(max_seconds, 0.0), warmup_epochs * steps_per_epoch, base_lr)

    @property
    def trains(self) -> bool:
        """Whether the run takes any step at all."""
        return self.total_steps > 0

    def progress(self, step: int, seconds: float) -> float:
        """Fraction of the run done, in [0, 1]: the larger of steps and seconds where both
        bound the run."""
        p = 0.0
        if math.isfinite(self.total_steps) and self.total_steps > 0:
            p = step / self.total_steps
        if self.max_seconds > 0:
            p = max(p, seconds / self.max_seconds)
        return min(max(p, 0.0), 1.0)

    def lr(self, progress: float, step: int) -> float:
        """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at progress 1."""
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        return self.base_lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    def done(self, step: int, seconds: float) -> str | None:
        """Why the run ends now (a reason), or None while it goes on."""
        if step >= self.total_steps:
            return "completed all epochs"
        if self.max_seconds > 0 and seconds >= self.max_seconds:
            return f"time budget of {self.max_seconds:g} s reached"
        return None


class Clock:
    """Seconds a run has used: counts only while running, starts from an earlier total on
    resume."""

    def __init__(self, seconds: float = 0.0) -> None:
        self._total = seconds
        self._since: float | None = None

    def start(self) -> None:
        if self._since is None:
            self._since = time.perf_counter()

    def stop(self) -> None:
        if self._since is not None:
            self._total += time.perf_counter() - self._since
            self._since = None

    @property
    def seconds(self) -> float:
        running = time.perf_counter() - self._since if self._since is not None else 0.0
        return self._total + running
