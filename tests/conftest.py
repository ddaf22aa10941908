"""Imported by pytest before any test module: importing ``engine`` first sets OpenMP's wait
policy before torch loads (see engine/__init__.py), so the suite runs at the engine's speed."""

import pytest

import engine  # noqa: F401


@pytest.fixture
def no_umap_warm_up(monkeypatch):
    """App tests draw PCA maps; compiling UMAP in the background would only slow them."""
    monkeypatch.setenv("SSL_STUDIO_UMAP_WARMUP", "0")


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A fresh runs directory for the app (``SSL_STUDIO_RUNS``)."""
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"
