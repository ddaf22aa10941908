"""Choosing the training device and precision."""

from __future__ import annotations

import os
import statistics

import torch


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` takes CUDA, then Apple's MPS, then the CPU. A named device that is missing
    raises ``ValueError``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"train.device={name} but no CUDA GPU is visible; use auto or cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= n:
            raise ValueError(f"train.device={name} but only {n} CUDA GPU(s) are visible")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ValueError("train.device=mps but Apple's MPS is not available; use auto or cpu")
    return torch.device(name)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """bf16 autocast on CUDA by default; fp32 (None) elsewhere unless bf16 is asked for."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cuda" else None


#: torch's intra-op thread count when the engine was imported (to tell a user's own choice)
_THREADS_AT_IMPORT = torch.get_num_threads()
#: the count this module last set (None: never), which is not a user's choice either
_threads_set: int | None = None
#: environment variables by which a user fixes the CPU thread count
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def user_chose_threads() -> bool:
    """Whether the user fixed the CPU thread count: ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
    set, or ``torch.set_num_threads`` called (by someone other than this module) since the
    engine was imported."""
    if any(os.environ.get(v, "").strip() for v in THREAD_VARIABLES):
        return True
    return torch.get_num_threads() not in (_THREADS_AT_IMPORT, _threads_set)


def set_cpu_threads(n: int) -> None:
    """Intra-op threads of the calling thread (and of threads that start computing later)."""
    global _threads_set
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    _threads_set = n


def configure_cpu_threads() -> None:
    """Use every core for intra-op work (torch's default can be lower in some containers),
    unless the user chose a thread count (:func:`user_chose_threads`), which is respected.

    Every core pays off only while the threads sleep when they wait (``OMP_WAIT_POLICY``
    ``PASSIVE``, set by ``engine/__init__.py`` before torch loads): with spinning waits, a
    machine busy with other work makes 2 threads slower than 1 (BENCHMARKS.md). Small steps
    are better off on one thread even so: :class:`StepThreads`.
    """
    if not user_chose_threads():
        set_cpu_threads(cpu_cores())


class StepThreads:
    """One thread or every core for a CPU run, chosen by timing the run's own steps.

    Sleeping OpenMP threads (``PASSIVE``, above) are woken for every parallel region of a step,
    hundreds of times a step; on a small step that costs more than a second core gains, and a
    machine busy with other work makes every core slower still. On an idle 2-core CPU a MoCo
    step of the lessons' size (width-8 CNN, 16 px, batch 16) took 18 ms on one thread and 58 ms
    on two, while the app's default SimCLR step took 326 ms and 217 ms; with one other busy
    process beside them, 294 ms and 313 ms (BENCHMARKS.md, "One thread or every core"). No
    size threshold tells these apart, so the run measures: :data:`TRIAL_STEPS` steps alternate
    between one thread and every core, and the run goes on with whichever had the shorter
    median step, trying again after every :data:`RETRY_SECONDS` of training (the machine's
    load changes). The run's first step is not timed (it allocates); if it took
    :data:`BIG_STEP_SECONDS` or more, the run keeps every core and never tries: wake-ups are
    small beside such steps. Trial steps are training steps like any other.

    Inactive (the count is left as it is) when the user chose a count, on a one-core machine,
    or when ``active`` is False (not a CPU run, or one process of several).
    """

    TRIAL_STEPS = 6
    BIG_STEP_SECONDS = 0.5
    RETRY_SECONDS = 30.0

    def __init__(self, active: bool) -> None:
        self.cores = cpu_cores()
        self.active = active and self.cores > 1 and not user_chose_threads()
        self.threads = torch.get_num_threads()
        self.choices: list[int] = []  # the count each trial chose, in order
        self._first = True
        self._trial: dict[int, list[float]] | None = None
        self._since = 0.0  # seconds of training since the last choice

    def observe(self, seconds: float) -> None:
        """The last training step took ``seconds``: set the count for the next one."""
        if not self.active:
            return
        if self._first:
            self._first = False
            if seconds >= self.BIG_STEP_SECONDS:
                self.active = False
                self._set(self.cores)
            else:
                self._trial_step(start=True)
        elif self._trial is not None:
            self._trial[self.threads].append(seconds)
            self._trial_step()
        else:
            self._since += seconds
            if self._since >= self.RETRY_SECONDS:
                self._trial_step(start=True)

    def _trial_step(self, start: bool = False) -> None:
        if start:
            self._trial = {1: [], self.cores: []}
        assert self._trial is not None
        done = sum(map(len, self._trial.values()))
        if done < self.TRIAL_STEPS:
            self._set(1 if done % 2 == 0 else self.cores)
            return
        one, every = (statistics.median(self._trial[n]) for n in (1, self.cores))
        self._set(1 if one < every else self.cores)
        self.choices.append(self.threads)
        self._trial, self._since = None, 0.0

    def _set(self, n: int) -> None:
        self.threads = n
        set_cpu_threads(n)


def configure_cuda() -> None:
    """Let cuDNN pick the fastest convolution algorithms for the (fixed) batch shapes, and let
    float32 matmuls outside autocast use TF32 tensor cores."""
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")


def resident_budget(device: torch.device) -> int | None:
    """Bytes the uint8 train split may take on ``device`` to stay resident there: half the
    free memory of a CUDA device (the rest is for the model, activations and the views);
    ``None`` (no limit) elsewhere, where the images already sit in the memory the device
    uses (the CPU's; Apple's MPS shares it)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    return None
