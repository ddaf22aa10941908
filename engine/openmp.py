"""How OpenMP's worker threads wait between a step's parallel regions.

torch's CPU kernels run on an OpenMP team (libgomp in the Linux wheels), which reads these
settings once, when torch loads; :func:`set_wait_policy` runs when the engine is imported,
before torch.

- ``OMP_WAIT_POLICY=PASSIVE``: a waiting thread goes to sleep instead of spinning for
  libgomp's default of about 3 ms. On a machine whose cores are busy with other work (a shared
  server, the app's UMAP beside a training run) spinning threads starve the thread they wait
  for: a small-CNN step took 2-3x longer on 2 threads than on 1 (BENCHMARKS.md).
- ``GOMP_SPINCOUNT`` = :data:`SPINS`: but first a short spin, about 0.1 ms (libgomp counts
  roughly 100,000 spins a millisecond). Sleeping outright costs a wake-up at each of the
  hundreds of parallel regions of a step, more than a second core gains on a small step: on an
  idle 2-core CPU BYOL's lesson step took 70 ms on two sleeping threads against 47 ms with the
  short spin, the app's default SimCLR step 204 against 184 ms (BENCHMARKS.md, "A short spin
  before sleeping"). On a busy machine a run goes to one thread anyway
  (:class:`engine.device.StepThreads`), which has nothing to wait for.

A value the user set wins: ``GOMP_SPINCOUNT`` itself, or any ``OMP_WAIT_POLICY`` other than
``PASSIVE`` (``ACTIVE``, or an empty one for libgomp's default). Other OpenMP runtimes
(LLVM's libomp on macOS) ignore ``GOMP_SPINCOUNT`` and sleep at once.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: spins before a waiting thread sleeps (about 0.1 ms)
SPINS = 10_000


def set_wait_policy(environ: MutableMapping[str, str] = os.environ) -> None:
    """Put the engine's wait policy into ``environ`` (the process's, or a child's), keeping
    what the user set."""
    if environ.setdefault("OMP_WAIT_POLICY", "PASSIVE").strip().upper() == "PASSIVE":
        environ.setdefault("GOMP_SPINCOUNT", str(SPINS))
