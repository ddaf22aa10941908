"""Choosing the training device and precision."""

from __future__ import annotations

import os

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
#: environment variables by which a user fixes the CPU thread count
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def configure_cpu_threads() -> None:
    """Use every core for intra-op work (torch's default can be lower in some containers),
    unless the user chose a thread count: ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` set, or
    ``torch.set_num_threads`` called since the engine was imported. Both are respected.

    Every core pays off only while the threads sleep when they wait (``OMP_WAIT_POLICY``
    ``PASSIVE``, set by ``engine/__init__.py`` before torch loads): with spinning waits, a
    machine busy with other work makes 2 threads slower than 1 (BENCHMARKS.md).
    """
    if any(os.environ.get(v, "").strip() for v in THREAD_VARIABLES):
        return
    if torch.get_num_threads() != _THREADS_AT_IMPORT:
        return
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if n and torch.get_num_threads() != n:
        torch.set_num_threads(n)


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
