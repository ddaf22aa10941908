"""What a workshop server depends on beyond the pages (BENCHMARKS.md, "Workshop load"): every
message is sent whole (``global.minCachedMessageSize`` in `.streamlit/config.toml`, read by
`make run` and the browser tests); messages sent by reference to the browser's cache froze
loaded pages behind "Cached ForwardMsg MISS"."""

from __future__ import annotations

from pathlib import Path

from streamlit import config

ROOT = Path(__file__).resolve().parents[1]


def test_streamlit_reads_the_workshop_settings(monkeypatch):
    """Parsed by Streamlit itself from the folder `make run` starts in (a misspelt key or
    section would be ignored, and this would fail)."""
    monkeypatch.chdir(ROOT)
    config.get_config_options(force_reparse=True)
    assert config.get_option("global.minCachedMessageSize") >= 1e15
