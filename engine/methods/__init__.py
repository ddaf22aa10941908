"""Methods, one file each, registered by name in ``METHODS``."""

import importlib
import pkgutil

from engine.methods.base import (
    METHODS,
    Batch,
    Method,
    StepOutput,
    build_method_config,
    describe_method,
    param,
)

__all__ = [
    "METHODS",
    "Batch",
    "Method",
    "StepOutput",
    "build_method_config",
    "build_method",
    "describe_method",
    "param",
]

# Every module in this package registers itself on import: adding a method is adding a file.
for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")


def build_method(name: str, params: dict, backbone, num_classes: int) -> Method:  # noqa: ANN001
    """Instantiate a registered method with validated options."""
    cls = METHODS.get(name)
    return cls(backbone, build_method_config(cls, params), num_classes)
