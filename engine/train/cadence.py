"""When a run evaluates, probes its collapse diagnostics and saves a checkpoint.

- Evaluation (kNN, snapshot, diagnostics of the evaluator): once right after the first step,
  on a copy of the initial weights (so the loss chart starts at once); then every
  ``eval.every_seconds`` of training, stretched to nine times the last evaluation's own time
  so that evaluating takes at most a tenth of the run; and at every ``eval.every_epochs``
  epochs. A run with nothing to train has no step 0 to wait for: its clock starts the wait.
- Collapse diagnostics on the probe batch: every ``eval.diagnostics_every_steps`` steps.
- Checkpoints: every ``train.checkpoint_every_seconds`` of wall time (paused time included:
  what a crash would lose) or every ``train.checkpoint_every_steps`` steps.
"""

from __future__ import annotations

import math
import time

from engine.config import RunConfig

#: an evaluation that took t seconds is followed by at least this many times t of training
TRAINING_PER_EVALUATION = 9


class Cadence:
    """What is due after a step. ``initial_pending``: the step-0 evaluation is still to come
    (after the first step); no evaluation is due on time before it."""

    def __init__(self, cfg: RunConfig, steps_per_epoch: int, seconds: float,
                 initial_pending: bool) -> None:
        self.eval, self.train = cfg.eval, cfg.train
        every = cfg.eval.every_epochs
        self._epoch_steps = max(1, int(round(every * steps_per_epoch))) if every else 0
        self._next_eval = math.inf if initial_pending else seconds + cfg.eval.every_seconds
        self._last_checkpoint = time.perf_counter()

    def evaluation_due(self, step: int, seconds: float) -> bool:
        """After ``step``, at ``seconds`` of training."""
        return seconds >= self._next_eval or bool(
            self._epoch_steps and step % self._epoch_steps == 0)

    def evaluated(self, seconds: float, eval_seconds: float) -> None:
        """An evaluation that took ``eval_seconds`` ended at ``seconds`` of training."""
        self._next_eval = seconds + max(self.eval.every_seconds,
                                        TRAINING_PER_EVALUATION * eval_seconds)

    def diagnostics_due(self, step: int) -> bool:
        every = self.eval.diagnostics_every_steps
        return bool(every) and step % every == 0

    def checkpoint_due(self, step: int) -> bool:
        t = self.train
        return bool(
            t.checkpoint_every_seconds
            and time.perf_counter() - self._last_checkpoint >= t.checkpoint_every_seconds
            or t.checkpoint_every_steps and step % t.checkpoint_every_steps == 0)

    def checkpointed(self) -> None:
        self._last_checkpoint = time.perf_counter()
