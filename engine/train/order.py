"""The data order of a run: which train images each step sees, and where a resume picks it up.

Each epoch is a permutation of the train split drawn from the run's own CPU generator;
semi-supervised methods get a fixed fraction of every batch from the labelled images. The
generator's state before each epoch is kept, so a checkpoint at any step can restore the
order exactly: the same epoch is drawn again and its first ``step % steps_per_epoch``
batches are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class DataOrder:
    """Batch indices of every step: ``blocks()`` yields one epoch's ``(steps, B)`` at a time."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        steps_per_epoch: int,
        seed: int,
        labelled_index: torch.Tensor | None = None,
        labelled_fraction: float | None = None,
    ) -> None:
        self.n, self.batch_size, self.steps_per_epoch = n, batch_size, steps_per_epoch
        self.labelled_index = labelled_index
        self.labelled_fraction = labelled_fraction
        self.generator = torch.Generator().manual_seed(seed)
        self._start = (0, 0)  # epoch to draw first, batches of it to skip
        self._states: dict[int, torch.Tensor] = {}  # epoch -> generator state before it

    def blocks(self) -> Iterator[torch.Tensor]:
        """The batch indices of each epoch on the host, from the current position on."""
        frac, b = self.labelled_fraction, self.batch_size
        lab = self.labelled_index
        epoch, skip = self._start
        while True:
            self._states[epoch] = self.generator.get_state()
            for old in [k for k in self._states if k < epoch - 1]:
                del self._states[old]
            perm = torch.randperm(self.n, generator=self.generator)
            rows = []
            for s in range(self.steps_per_epoch):
                idx = perm[s * b : (s + 1) * b]
                if frac and lab is not None and len(lab):
                    n_lab = max(1, int(round(frac * b)))
                    pick = torch.randint(len(lab), (n_lab,), generator=self.generator)
                    idx = torch.cat([lab[pick], idx[: b - n_lab]])
                rows.append(idx)
            yield torch.stack(rows)[skip:]
            epoch, skip = epoch + 1, 0

    def state_at(self, step: int) -> torch.Tensor:
        """The generator state that redraws the epoch ``step`` falls in (``step`` batches have
        been handed out; one more may already be drawn ahead)."""
        epoch = step // self.steps_per_epoch
        return self._states.get(epoch, self.generator.get_state())

    def restore(self, state: torch.Tensor, step: int) -> None:
        """Continue at ``step`` from a :meth:`state_at` state (before ``blocks()`` is called)."""
        self.generator.set_state(state)
        self._start = divmod(step, self.steps_per_epoch)
        self._states = {}
