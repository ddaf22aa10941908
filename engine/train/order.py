"""The data order of a run: which train images each step sees, and where a resume picks it up.

Each epoch is a permutation of the train split drawn from the run's own CPU generator;
semi-supervised methods get a fixed fraction of every batch from the labelled images. The
balanced sampler (``class_labels`` given) instead fills every batch with every class in equal
shares, drawing each class from its own permutations, repeated as often as needed: a small
class is oversampled, a large one seen in part per epoch (the article on SupCon against
cross-entropy oversamples so each batch holds every class). The
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
        class_labels: torch.Tensor | None = None,
    ) -> None:
        """``class_labels`` (N,), -1 for unlabelled: draw class-balanced batches of the
        labelled images (``ValueError`` when there are fewer than 2 classes or more classes
        than a batch holds)."""
        self.n, self.batch_size, self.steps_per_epoch = n, batch_size, steps_per_epoch
        self.classes: list[torch.Tensor] | None = None
        if class_labels is not None:
            values = class_labels.cpu()
            self.classes = [torch.nonzero(values == c).flatten()
                            for c in values[values >= 0].unique().tolist()]
            if len(self.classes) < 2:
                raise ValueError("data.sampler: balanced needs a labelled train split with at "
                                 "least 2 classes")
            if batch_size < len(self.classes):
                raise ValueError(f"data.sampler: balanced puts every class in every batch, but "
                                 f"train.batch_size {batch_size} is smaller than the "
                                 f"{len(self.classes)} classes")
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
            if self.classes is not None:
                yield self._balanced_epoch()[skip:]
                epoch, skip = epoch + 1, 0
                continue
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

    def _balanced_epoch(self) -> torch.Tensor:
        """One epoch of class-balanced batches, (steps, B): each class gets ``B // C`` places
        in every batch and the ``B % C`` left go to classes drawn at random; each class's
        images come from successive permutations of it; each batch is shuffled (so the
        micro-batches of gradient accumulation hold a mix too)."""
        g, b, steps = self.generator, self.batch_size, self.steps_per_epoch
        classes = self.classes or []
        share, extra = divmod(b, len(classes))
        streams = []
        for members in classes:
            need = steps * (share + 1)
            perms = [members[torch.randperm(len(members), generator=g)]
                     for _ in range(-(-need // len(members)))]
            streams.append(torch.cat(perms))
        rows = []
        for s in range(steps):
            bonus = set(torch.randperm(len(classes), generator=g)[:extra].tolist())
            parts = []
            for c, stream in enumerate(streams):
                take = share + (c in bonus)
                parts.append(stream[s * (share + 1) : s * (share + 1) + take])
            idx = torch.cat(parts)
            rows.append(idx[torch.randperm(b, generator=g)])
        return torch.stack(rows)

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
