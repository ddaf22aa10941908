"""How OpenMP's worker threads wait between a step's parallel regions.

torch's CPU kernels run on an OpenMP team (libgomp in the Linux wheels), which reads its
settings once, when torch loads; :func:`set_wait_policy` runs when the engine is imported,
before torch. ``OMP_WAIT_POLICY=PASSIVE``: a waiting thread sleeps instead of spinning for
libgomp's default of about 3 ms. On a machine whose cores are busy with other work (a shared
server, the app's UMAP beside a training run) spinning threads starve the thread they wait
for: a small-CNN step took 2-3x longer on 2 threads than on 1 (BENCHMARKS.md). A value the
user set (``ACTIVE``, or an empty one for libgomp's default) is kept.

Measured and not used: a short spin before sleeping (``GOMP_SPINCOUNT=10000``, about 0.1 ms).
Steps timed on their own gain 1.2-1.8x from a second core with it on an idle 2-core CPU, but
whole runs much less (the app's default run 1.07x; a lesson with diagnostics every 10 steps
none), and the lessons' runs would then pick two threads (:class:`engine.device.StepThreads`),
other numerical paths than their seeds were checked on (BENCHMARKS.md, "A short spin before
sleeping"). Set ``GOMP_SPINCOUNT`` yourself to use it.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping


def set_wait_policy(environ: MutableMapping[str, str] = os.environ) -> None:
    """Put the engine's wait policy into ``environ`` (the process's, or a child's), keeping
    what the user set."""
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
