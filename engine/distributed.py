"""Several processes, one run: ``torch.distributed`` set up from ``torchrun``'s environment.

``torchrun --nproc-per-node N -m engine train ...`` starts N copies of the engine with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environment;
:func:`init_from_env` joins them into one process group (NCCL for CUDA tensors, gloo for CPU
tensors) and gives each its GPU. A process started any other way (``WORLD_SIZE`` unset or 1)
never calls into ``torch.distributed``: :func:`current` is None, :func:`world_size` is 1 and
:func:`gather` returns its argument as it is.

What distribution changes for the methods (Goyal et al. 2017, https://arxiv.org/abs/1706.02677
for the linear learning-rate rule; SimCLR's and SupCon's reference code for the gather):

- the configured batch size is the global batch; each process trains on ``B / N`` of it;
- a loss over the whole batch (NT-Xent, SupCon, Barlow Twins' cross-correlation, VICReg's
  covariance, triplet and margin mining) sees the gathered ``(B, ...)`` tensors: :func:`gather`
  keeps autograd, its backward sums the gradient from every process and keeps this process's
  rows, so with DistributedDataParallel's mean over processes the gradient is the one-process
  gradient of the global batch;
- the global objective is the sum over processes of each one's loss, which DDP divides by N.
"""

from __future__ import annotations

import datetime
import gc
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist

#: how long a process waits at a collective for the others (rank 0 evaluates alone meanwhile)
TIMEOUT = datetime.timedelta(minutes=60)


def launched() -> bool:
    """Whether this process was started as one of several (``WORLD_SIZE`` > 1, torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class Context:
    """This process in its group: ``rank`` of ``world`` (``local_rank`` on its machine)."""

    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        """Rank 0: the process that evaluates and writes the run directory."""
        return self.rank == 0

    def global_batch(self, batch_size: int) -> int:
        """The global batch rounded down to a multiple of the process count (each process
        takes an equal share, as :func:`gather` needs)."""
        if batch_size < 2 * self.world:
            raise ValueError(f"train.batch_size {batch_size} is too small for {self.world} "
                             f"processes: each needs at least 2 images a step")
        return batch_size - batch_size % self.world

    def shard(self, block: torch.Tensor) -> torch.Tensor:
        """This process's share of an epoch's batch indices: (steps, B) -> (steps, B / N),
        every N-th image of each global batch from position ``rank`` on (so the labelled
        images a semi-supervised batch starts with are spread over the processes)."""
        return block[:, self.rank :: self.world]

    def agree(self, stop: bool, done: str | None) -> tuple[bool, str | None]:
        """Rank 0's decision to stop (the user) or end (the schedule: ``done`` is the reason),
        made known to every process before each step, so all take the same number of steps.
        A CPU tensor: the gloo side of the group, no GPU synchronisation."""
        code = torch.tensor([1 if stop else 2 if done else 0])
        dist.broadcast(code, src=0)
        if self.main:
            return stop, done
        c = int(code)
        return c == 1, ("ended by the run's first process" if c == 2 else None)


_CONTEXT: Context | None = None


def current() -> Context | None:
    """This process's :class:`Context`, None when it trains alone."""
    return _CONTEXT


def world_size() -> int:
    return 1 if _CONTEXT is None else _CONTEXT.world


def rank() -> int:
    return 0 if _CONTEXT is None else _CONTEXT.rank


def init_from_env(device: str = "auto") -> Context:
    """Join the process group torchrun describes in the environment (``env://``).

    ``device``: the run's ``train.device``; unless it is ``cpu``, each process takes the GPU
    ``LOCAL_RANK`` when there are GPUs. Backend: NCCL for CUDA tensors and gloo for CPU tensors
    (``cpu:gloo,cuda:nccl``), gloo alone on a machine without CUDA.
    """
    global _CONTEXT
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and device != "cpu"
    if cuda:
        torch.cuda.set_device(local_rank)
    backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT)
    _CONTEXT = Context(dist.get_rank(), dist.get_world_size(), local_rank)
    return _CONTEXT


def farewell() -> None:
    """Wait until every process is done before any leaves the group (after a run that ended
    normally: rank 0 evaluates and checkpoints alone at the end, and a process that tears its
    gloo connections down while another still works can abort). A peer that is already gone
    ends the wait: the run is recorded by then."""
    if _CONTEXT is not None and dist.is_initialized():
        try:
            dist.barrier()
        except (RuntimeError, dist.DistError):
            pass


def shutdown() -> None:
    """Leave the process group (every process, at the end of its run). What the run built is
    collected first: DistributedDataParallel's reducer holds the group, and a group left to
    the interpreter's exit tears its gloo threads down there, which can abort the process."""
    global _CONTEXT
    _CONTEXT = None
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def leave(code: int) -> NoReturn:
    """End this torchrun process with ``code`` once its run is recorded and it has left the
    group: output flushed, then out without the interpreter's teardown, where a rank's gloo
    threads still being joined aborted it now and then ("terminate called without an active
    exception", SIGABRT) and torchrun turned a finished run's exit status into 1."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def rank_seed(seed: int) -> int:
    """The seed of this process's augmentation generator: the run's seed on rank 0 (so rank 0
    draws what a one-process run draws), a different stream on every other rank."""
    return seed + 1_000_003 * rank()


class _Gather(torch.autograd.Function):
    """all_gather whose backward sums the incoming gradient over processes and returns this
    process's rows (SimCLR's ``SyncFunction``; SupContrast's ``GatherLayer``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        b = grad.shape[0] // dist.get_world_size()
        r = dist.get_rank()
        return grad[r * b : (r + 1) * b]


def gather(x: torch.Tensor) -> torch.Tensor:
    """Every process's ``x`` stacked in rank order: (b, ...) -> (N * b, ...); ``x`` itself on
    one process. Gradients flow back to each process's own rows (see :class:`_Gather`). Every
    process must pass the same shape."""
    if _CONTEXT is None:
        return x
    if x.requires_grad:
        return _Gather.apply(x)
    parts = [torch.empty_like(x) for _ in range(_CONTEXT.world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def local_rows(x: torch.Tensor) -> torch.Tensor:
    """This process's rows of a gathered (N * b, ...) tensor: (b, ...)."""
    if _CONTEXT is None:
        return x
    b = x.shape[0] // _CONTEXT.world
    return x[_CONTEXT.rank * b : (_CONTEXT.rank + 1) * b]


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the backward sums the gradient too (d sum_r L_r / d x_local)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """``x`` summed over processes, differentiable (batch-norm statistics of the global
    batch); ``x`` itself on one process."""
    if _CONTEXT is None:
        return x
    return _AllReduceSum.apply(x)


def shared_permutation(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """A random permutation of ``range(n)`` drawn by rank 0 from its ``generator`` and sent to
    every process (MoCo's ``_batch_shuffle_ddp``); on one process simply drawn."""
    if _CONTEXT is None or _CONTEXT.main:
        perm = torch.randperm(n, device=device, generator=generator)
    else:
        perm = torch.empty(n, dtype=torch.long, device=device)
    if _CONTEXT is not None:
        dist.broadcast(perm, src=0)
    return perm
