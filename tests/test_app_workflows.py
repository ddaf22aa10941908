"""The workflows' controls on the Train page, a second stage's parent on Runs, and the budget
and classifier columns on Compare (Streamlit's AppTest)."""

from __future__ import annotations

import pytest

from app import clicks
from engine.config import RunConfig
from engine.train.runner import run_foreground
from engine.train.store import RunStore
from tests.fixtures.app import APP, TIMEOUT, no_exception, texts
from tests.fixtures.tiny_runs import TINY

st_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = st_testing.AppTest

pytestmark = pytest.mark.usefixtures("no_umap_warm_up")


def app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in ({"who": "tester"} | (query or {})).items():
        at.query_params[k] = v
    return at


def warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.sidebar.warning)


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """Cross-entropy (2 epochs), SupCon (1 epoch) and a frozen classifier on SupCon's encoder
    (2 epochs), on the same tiny data."""
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    ids = {}
    base = {**TINY, "train.max_seconds": 0, "eval.linear_probe": False, "eval.every_epochs": 1}
    for name, extra in (("ce", {"method.name": "cross_entropy", "train.epochs": 2}),
                        ("supcon", {"method.name": "supcon", "train.epochs": 1})):
        run, last = run_foreground(RunConfig().with_overrides({**base, **extra}), store)
        assert last["type"] == "finished", last
        ids[name] = run.id
    cfg = RunConfig().with_overrides({**base, "method.name": "classifier", "train.epochs": 2,
                                      "model.init_from": ids["supcon"]})
    import os

    old = os.environ.get("SSL_STUDIO_RUNS")
    os.environ["SSL_STUDIO_RUNS"] = str(root)  # the run id is found in this store
    try:
        run, last = run_foreground(cfg, store)
    finally:
        if old is None:
            os.environ.pop("SSL_STUDIO_RUNS")
        else:
            os.environ["SSL_STUDIO_RUNS"] = old
    assert last["type"] == "finished", last
    ids["classifier"] = run.id
    return root, ids


def test_accumulation_warns_for_an_approximate_method_only(runs_dir):
    at = app().run()
    sb = at.sidebar
    sb.selectbox(key="method_name").set_value("simclr").run()
    assert "approximate" not in warnings(at)
    at.sidebar.number_input(key="train_accumulate").set_value(4).run()
    no_exception(at)
    text = warnings(at)
    assert "approximate for simclr" in text and "4 micro-batches" in text
    at.sidebar.selectbox(key="method_name").set_value("cross_entropy").run()
    no_exception(at)
    assert "approximate" not in warnings(at)


def test_the_workflow_controls_reach_the_run(runs_dir):
    at = app().run()
    sb = at.sidebar
    sb.selectbox(key="method_name").set_value("supcon")
    sb.select_slider(key="data_size").set_value(16)
    sb.number_input(key="data_train_size").set_value(512)
    sb.number_input(key="data_label_noise").set_value(0.2)
    sb.number_input(key="data_imbalance").set_value(5.0)
    sb.radio(key="data_sampler").set_value("balanced")
    sb.slider(key="train_seconds").set_value(10)
    at.run()
    at.sidebar.number_input(key="train_accumulate").set_value(2).run()
    at.sidebar.button(key="train").click().run()
    no_exception(at)
    from app.state import registry

    reg = registry()
    runs = reg.runs()
    assert len(runs) == 1
    cfg = runs[0].config()
    assert (cfg.data.label_noise, cfg.data.imbalance, cfg.data.sampler) == (0.2, 5.0,
                                                                            "balanced")
    assert cfg.train.accumulate == 2
    from engine.train.participants import Actor

    reg.stop(runs[0].id, Actor("tester"))


def test_a_missing_pretrained_file_is_a_readable_error(runs_dir, tmp_path):
    at = app().run()
    assert not at.error
    at.sidebar.text_input(key="model_pretrained").set_value(str(tmp_path / "none.pth")).run()
    at.sidebar.button(key="train").click().run()
    no_exception(at)
    assert "no weights file at" in " ".join(e.value for e in at.error)
    at.sidebar.text_input(key="model_pretrained").set_value("").run()
    at.sidebar.text_input(key="model_init_from").set_value("no-such-run").run()
    at.sidebar.button(key=clicks.widget_key("train", at.session_state)).click().run()
    no_exception(at)
    assert "model.init_from: no run" in " ".join(e.value for e in at.error)


def test_runs_lists_a_second_stage_with_its_parent(stages, monkeypatch):
    root, ids = stages
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(root))
    at = app().run()
    at.switch_page("app/pages/runs.py").run()
    no_exception(at)
    table = at.dataframe[0].value
    by_run = {r["run"]: r for r in table.to_dict("records")}
    assert by_run[ids["classifier"]]["parent"] == ids["supcon"]
    assert by_run[ids["ce"]]["parent"] == ""
    assert 0 <= by_run[ids["classifier"]]["classifier top-1"] <= 1


def test_compare_puts_the_second_stage_next_to_cross_entropy(stages, monkeypatch):
    root, ids = stages
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(root))
    at = app({"a": ids["classifier"], "b": ids["ce"]}).run()
    at.switch_page("app/pages/compare.py").run()
    no_exception(at)
    at.radio(key="compare_kind").set_value("pca").run()
    table = at.dataframe[0].value
    assert {"epochs", "seconds", "classifier (final)"} <= set(table.columns)
    assert table["classifier (final)"].notna().all()
    assert list(table["epochs"]) == [2.0, 2.0]
    assert "Same budget: both at 2.0 epochs" in texts(at)


def test_compare_opens_two_budgets_at_the_same_epochs(stages, monkeypatch):
    """SupCon trained 1 epoch, cross-entropy 2: Compare opens cross-entropy at its 1-epoch map,
    says so, and warns once the slider shows its last map."""
    root, ids = stages
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(root))
    at = app({"a": ids["supcon"], "b": ids["ce"]}).run()
    at.switch_page("app/pages/compare.py").run()
    at.radio(key="compare_kind").set_value("pca").run()
    no_exception(at)
    assert list(at.dataframe[0].value["epochs"]) == [1.0, 1.0]
    page = texts(at)
    assert "B is shown at step 8 (1.0 epochs)" in page and "its last map is step 16" in page
    assert "Same budget: both at 1.0 epochs" in page
    at.select_slider(key=f"compare_step_b_{ids['ce']}").set_value(16).run()
    no_exception(at)
    assert "Unequal budgets: A at 1.0 epochs, B at 2.0" in " ".join(w.value for w in at.warning)


def test_compare_shows_supcon_z_beside_cross_entropy_h(stages, monkeypatch):
    root, ids = stages
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(root))
    at = app({"a": ids["supcon"], "b": ids["ce"]}).run()
    at.switch_page("app/pages/compare.py").run()
    at.radio(key="compare_kind").set_value("pca").run()
    assert list(at.radio(key="compare_feature").options) == ["h", "z"]
    at.radio(key="compare_feature").set_value("z").run()
    no_exception(at)
    assert "B has no z (no projection head): its h is shown instead" in texts(at)
    assert len(at.dataframe[0].value) == 2
