"""SSL Studio engine: data, augmentations, models, methods, training and evaluation.

Pure Python + torch; never imports streamlit. Usable from notebooks, the CLI and the tests.
"""

__version__ = "0.1.0"
