"""How much one server takes on at once, and who its instructor is: read from the
environment when the server starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


def _env_int(environ: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    raw = environ.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"{key} must be a whole number of at least {minimum} (got {raw!r})")
    return value


@dataclass(frozen=True)
class Limits:
    """How much one server takes on at once, and who the instructor is."""

    max_runs_cpu: int = 1  # runs training at once on the CPU (or Apple's MPS)
    max_runs_per_gpu: int = 2  # runs training at once on each CUDA GPU
    max_queued: int = 2  # runs one participant may have waiting in the queue
    instructor_token: str = field(default="", repr=False)  # "" = no instructor

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """``SSL_STUDIO_MAX_RUNS_CPU`` (1), ``SSL_STUDIO_MAX_RUNS_PER_GPU`` (2),
        ``SSL_STUDIO_MAX_QUEUED`` (2 per participant), ``SSL_STUDIO_INSTRUCTOR_TOKEN`` ("")."""
        env = os.environ if environ is None else environ
        return cls(
            max_runs_cpu=_env_int(env, "SSL_STUDIO_MAX_RUNS_CPU", 1, 1),
            max_runs_per_gpu=_env_int(env, "SSL_STUDIO_MAX_RUNS_PER_GPU", 2, 1),
            max_queued=_env_int(env, "SSL_STUDIO_MAX_QUEUED", 2, 1),
            instructor_token=env.get("SSL_STUDIO_INSTRUCTOR_TOKEN", "").strip(),
        )
