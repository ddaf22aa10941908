"""The loss between two step events: summed on the device, read back a few times a second.

A step's loss (and a method's step logs, e.g. FixMatch's ``mask_rate``) is added to sums that
stay on the training device; :meth:`LossMeter.mean` reads them back to the host once per step
event (the loop's one host sync, ``Trainer.emit_every`` apart) and starts a new window. A loss
that is not finite ends the run with a message that says what to try (``advice``).
"""

from __future__ import annotations

import math

import torch

from engine.methods import StepOutput


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the message says what to try."""


class LossMeter:
    """Sums of the loss and the step logs since the last step event."""

    def __init__(self, device: torch.device, advice: str = "") -> None:
        self.advice = advice
        self.loss_sum = torch.zeros((), device=device)
        self.logs_sum: dict[str, torch.Tensor] = {}
        self.n = 0

    def add(self, out: StepOutput) -> None:
        """One step's output (no host sync)."""
        self.loss_sum += out.loss.detach().float()
        for k, v in out.logs.items():
            self.logs_sum[k] = self.logs_sum.get(k, 0) + torch.as_tensor(v).detach().float()
        self.n += 1

    def mean(self, step: int) -> tuple[float, dict[str, float]]:
        """The mean loss and logs of the window, then an empty window. Raises
        :class:`NonFiniteLoss` (naming ``step``, with the advice) when the loss is not
        finite."""
        loss = float(self.loss_sum) / self.n  # the host sync
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"the loss became {loss} at step {step}. {self.advice}")
        logs = {k: float(v) / self.n for k, v in self.logs_sum.items()}
        self.loss_sum.zero_()
        self.logs_sum, self.n = {}, 0
        return loss, logs
