"""SSL Studio engine: data, augmentations, models, methods, training and evaluation.

Pure Python + torch; never imports streamlit. Usable from notebooks, the CLI and the tests.
"""

# OpenMP's threads sleep while they wait (engine/openmp.py). Read once, when torch loads: hence
# here, before it.
from engine.openmp import set_wait_policy

set_wait_policy()

# A server that trains run after run must give freed memory back (engine/memory.py).
from engine.memory import limit_heaps  # noqa: E402

limit_heaps()

__version__ = "0.1.0"
