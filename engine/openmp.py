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

NumPy's linear algebra has threads of its own (OpenBLAS, pthreads, not OpenMP), and they spin
for about 0.1 s after each call whatever the policy above. The collapse probe between
training steps (an eigen-decomposition and a few products on a batch of 128 to 256
embeddings) woke them, and the training step after it, on two threads, ran 30-40 ms slower:
:func:`numpy_blas_on_one_thread` keeps them asleep (BENCHMARKS.md, "The step after a probe").
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager


def set_wait_policy(environ: MutableMapping[str, str] = os.environ) -> None:
    """Put the engine's wait policy into ``environ`` (the process's, or a child's), keeping
    what the user set."""
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextmanager
def numpy_blas_on_one_thread() -> Iterator[None]:
    """NumPy's (and SciPy's) BLAS and LAPACK on the calling thread alone, within the block: no
    worker thread is woken, so none spins afterwards beside the next training step. For small
    matrices, where a second thread gains nothing."""
    try:
        from threadpoolctl import threadpool_limits  # scikit-learn's, loaded on first use
    except ImportError:  # an install of the engine alone: the threads may spin, no worse
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield
