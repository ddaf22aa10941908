"""The data path of a run: each step's batch on the training device (:func:`device_batches`),
indexed there when the split is resident, or streamed for train splits larger than the
training device's memory.

When the uint8 train split does not fit on the device (:func:`place`), it stays in
host memory (page-locked, "pinned", on CUDA) and :func:`stream_batches` hands out each batch on
the device, one batch ahead: the gather of batch ``i + 1`` into a pinned buffer and its
asynchronous copy are issued before batch ``i`` is handed to the step, so the host never waits
for the copy and the GPU never waits for the host. Batches are exactly those of the resident
path (same indices, same order), so a run does not depend on which path it took.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from engine.device import resident_budget


def place(images: torch.Tensor, device: torch.device,
          limit: int | None = None) -> tuple[torch.Tensor, bool]:
    """The uint8 train split on ``device`` when it fits in ``limit`` bytes (default
    :func:`engine.device.resident_budget`), else in host memory, pinned for CUDA, to be
    streamed; and whether it is resident."""
    if limit is None:
        limit = resident_budget(device)
    if limit is None or images.numel() * images.element_size() <= limit:
        return images.to(device), True
    if device.type == "cuda":
        images = images.pin_memory()
    return images, False


class PinnedGather:
    """Gathers ``images[idx]`` into reusable pinned buffers and copies them to ``device``
    without blocking (CUDA); elsewhere a plain gather and copy.

    Two buffers alternate; before one is refilled, the copy out of it (recorded as a CUDA
    event) must have finished, so a buffer is never overwritten while the GPU reads it.
    """

    def __init__(self, images: torch.Tensor, device: torch.device, buffers: int = 2) -> None:
        self.images = images
        self.device = device
        self.pinned = device.type == "cuda" and images.is_pinned()
        self._buffers: list[torch.Tensor | None] = [None] * buffers
        self._events: list[torch.cuda.Event | None] = [None] * buffers
        self._next = 0

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """``images[idx]`` (B, C, H, W) on the device; ``idx`` (B,) int64 on the host."""
        if not self.pinned:
            return self.images.index_select(0, idx).to(self.device)
        k = self._next
        self._next = (k + 1) % len(self._buffers)
        if self._events[k] is not None:
            self._events[k].synchronize()  # the last copy out of this buffer is done
        shape = (len(idx), *self.images.shape[1:])
        buf = self._buffers[k]
        if buf is None or buf.shape[0] < shape[0]:
            buf = self._buffers[k] = torch.empty(shape, dtype=self.images.dtype).pin_memory()
        out = buf[: shape[0]]
        torch.index_select(self.images, 0, idx, out=out)
        x = out.to(self.device, non_blocking=True)
        event = self._events[k] or torch.cuda.Event()
        event.record()
        self._events[k] = event
        return x


def stream_batches(
    gather: PinnedGather, indices: Iterator[torch.Tensor]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(idx, images[idx] on the device)`` for each ``idx`` of ``indices``, one batch ahead.

    The copy of the next batch is issued before the current one is yielded, so it is in
    flight while the caller's step runs on the current one.
    """
    idx = next(indices)
    x = gather(idx)
    for following in indices:
        x_following = gather(following)
        yield idx, x
        idx, x = following, x_following
    yield idx, x


def device_batches(
    images: torch.Tensor, gather: PinnedGather | None, blocks: Iterator[torch.Tensor],
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(idx, images[idx])`` for every step of ``blocks`` (the data order's epochs, (steps,
    B)), the images on ``device``: indexed there (by indices on the device) when the split is
    resident (``gather`` None), else streamed from host memory one batch ahead (indices on the
    host).

    A resident run copies one epoch's indices to the device at a time: a blocking host-to-device
    copy waits for all queued GPU work, so one per step would stop the host from queueing the
    next step's kernels while the GPU runs this one.
    """
    if gather is not None:
        return stream_batches(gather, (idx for block in blocks for idx in block))
    return (
        (idx, images[idx])
        for block in blocks
        for idx in block.to(device)  # (B,) on the device
    )
