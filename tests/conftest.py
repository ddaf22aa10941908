"""Imported by pytest before any test module: importing ``engine`` first sets OpenMP's wait
policy before torch loads (see engine/__init__.py), so the suite runs at the engine's speed."""

import engine  # noqa: F401
