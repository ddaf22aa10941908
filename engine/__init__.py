"""SSL Studio engine: data, augmentations, models, methods, training and evaluation.

Pure Python + torch; never imports streamlit. Usable from notebooks, the CLI and the tests.
"""

import os

# OpenMP threads that wait for work sleep instead of spinning. On a machine whose cores are
# busy with other work (a shared server, the app's UMAP beside a training run), spinning threads
# starve the thread they wait for: on a loaded 2-core CPU a small-CNN step took 2-3x longer with
# 2 threads than with 1 (BENCHMARKS.md). Read once, when torch loads: hence here, before it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# A server that trains run after run must give freed memory back (engine/memory.py).
from engine.memory import limit_heaps  # noqa: E402

limit_heaps()

__version__ = "0.1.0"
