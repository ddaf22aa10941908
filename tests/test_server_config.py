"""What a workshop server depends on beyond the pages, both measured under twenty participants
(BENCHMARKS.md, "Workshop load"):

- every message is sent whole (``global.minCachedMessageSize`` in `.streamlit/config.toml`, read
  by `make run` and the browser tests): messages sent by reference to the browser's cache froze
  loaded pages behind "Cached ForwardMsg MISS";
- the heap of imported modules is frozen (``app.heap``), so the full garbage collection Streamlit
  runs after every script run walks only what pages made, not torch's and plotly's 400,000
  objects (0.25 s each time on a 2-core CPU, most of a loaded server's time);
- a page does not keep the widgets it no longer draws (``app.stale_widgets``): Streamlit kept the
  options and callback of every run picker a session ever drew, a new one each time a listed
  run changed.
"""

from __future__ import annotations

import gc
from pathlib import Path

from streamlit import config

ROOT = Path(__file__).resolve().parents[1]


def test_streamlit_reads_the_workshop_settings(monkeypatch):
    """Parsed by Streamlit itself from the folder `make run` starts in (a misspelt key or
    section would be ignored, and this would fail)."""
    monkeypatch.chdir(ROOT)
    config.get_config_options(force_reparse=True)
    assert config.get_option("global.minCachedMessageSize") >= 1e15


def test_the_imported_modules_are_out_of_the_collectors_sight():
    """After the first page, torch's and the app's objects are frozen: the collector does not
    see them (``gc.get_objects`` lists what a full collection walks)."""
    import torch

    from app import charts, heap

    assert heap.freeze_imports() >= 100_000
    walked = {id(o) for o in gc.get_objects()}
    assert id(vars(torch.nn.modules.conv)) not in walked
    assert id(vars(charts)) not in walked


def test_a_page_keeps_no_widget_it_no_longer_draws(monkeypatch, tmp_path):
    """Each change of a listed run draws the run picker under a new key. What the session
    keeps of widgets stays the same size over five changes, and the picker still acts."""
    from engine.config import RunConfig
    from engine.train.store import RunStore
    from tests.fixtures.app import no_exception, open_app

    store = RunStore(tmp_path / "runs")
    older, newer = store.create(RunConfig(), owner="tester"), store.create(RunConfig())
    at = open_app(monkeypatch, tmp_path / "runs", {"run": newer.id}).run()
    state = at._session_state._state
    sizes = []
    for n in range(5):
        newer.write_summary({"status": "stopped", "owner": f"participant {n}"})
        at.run()
        sizes.append((len(state._new_widget_state.widget_metadata),
                      len(state._key_id_mapper.id_key_mapping)))
    no_exception(at)
    assert len(set(sizes)) == 1, sizes
    picker = next(b for b in at.selectbox if b.label == "Run")
    picker.select(older.id).run()
    no_exception(at)
    assert at.query_params["run"] == older.id
