"""Every page of the app under Streamlit's AppTest: no exception, a run started from the Train
page reaches the registry, engine errors become readable messages, Explore, Compare and Runs
show their runs, participants steer only their own. The Train page's settings:
``test_app_train_settings.py``."""

from __future__ import annotations

import time

import pytest

from engine.config import RunConfig
from engine.train.runner import run_foreground
from engine.train.store import RunStore
from tests.fixtures import data_files as fx
from tests.fixtures.app import app, no_exception, texts
from tests.fixtures.tiny_runs import TINY as TINY_RUN

st_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = st_testing.AppTest

TINY = {**TINY_RUN, "train.epochs": 1, "train.max_seconds": 0}


pytestmark = pytest.mark.usefixtures("no_umap_warm_up")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A SupCon and a cross-entropy run on the same tiny data (untrained: epochs 0 still
    evaluates and writes the step-0 map, which is all these pages need)."""
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    ids = []
    for method in ("cross_entropy", "supcon"):
        cfg = RunConfig().with_overrides({**TINY, "method.name": method, "train.epochs": 0})
        run, last = run_foreground(cfg, store)
        assert last["type"] == "finished", last
        ids.append(run.id)
    return root, ids


def picker(at: AppTest, label: str):
    """The run picker labelled ``label`` (its key changes with the runs it lists)."""
    boxes = [b for b in at.selectbox if b.label == label]
    assert len(boxes) == 1, [b.label for b in at.selectbox]
    return boxes[0]


def registry_of(at: AppTest):
    from app.state import registry

    return registry()


# -- Train -----------------------------------------------------------------------------------
def test_masked_image_modelling_shows_what_it_fills_in(runs_dir, two_runs, monkeypatch):
    cfg = RunConfig().with_overrides({**TINY, "method.name": "mim", "train.epochs": 0})
    run, last = run_foreground(cfg, RunStore(runs_dir))
    assert last["type"] == "finished", last
    at = app({"run": run.id}).run()
    no_exception(at)
    assert [s.value for s in at.subheader].count("Reconstructions") == 1
    assert "hidden patches as the network fills them in" in texts(at)
    root, ids = two_runs
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(root))
    at = app({"run": ids[1]}).run()  # SupCon reconstructs nothing
    assert "supcon" in str(picker(at, "Run").value)
    assert "Reconstructions" not in [s.value for s in at.subheader]


def test_a_run_started_from_the_train_page_reaches_the_registry(runs_dir):
    at = app().run()
    sb = at.sidebar
    sb.selectbox(key="data_name").set_value("shapes")
    sb.select_slider(key="data_size").set_value(16)
    sb.number_input(key="data_train_size").set_value(512)
    sb.select_slider(key="train_batch_size_128").set_value(64)
    sb.radio(key="train_optimizer").set_value("sgd")
    sb.slider(key="train_seconds").set_value(10)
    sb.text_input(key="run_name").set_value("from the test")
    at.run()
    at.sidebar.number_input(key="train_lr_sgd_0.05").set_value(0.1)
    at.sidebar.number_input(key="train_momentum").set_value(0.8)
    at.run()
    at.sidebar.button(key="train").click().run()
    no_exception(at)
    reg = registry_of(at)
    runs = reg.runs()
    assert len(runs) == 1
    run_id = runs[0].id
    assert at.query_params["run"] == [run_id] or at.query_params["run"] == run_id
    assert runs[0].config().name == "from the test"
    assert runs[0].config().data.train_size == 512
    train = runs[0].config().train
    assert (train.batch_size, train.optimizer, train.lr, train.momentum) == (64, "sgd", 0.1, 0.8)
    runner = reg.live(run_id)
    assert runner is not None
    # the live panel shows the run's steps once they arrive
    deadline = time.time() + 60
    while runner.alive and not runs[0].metrics("step") and time.time() < deadline:
        time.sleep(0.2)
    assert runs[0].metrics("step"), "no training step within 60 s"
    at.run()
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Step"] not in ("0", 0), metrics
    assert float(metrics["Loss"]) > 0
    # the controls drive the runner
    if runner.alive:
        at.button(key="pause").click().run()
        no_exception(at)
        assert runner.paused or not runner.alive
    if runner.alive:
        at.button(key="resume").click().run()
        no_exception(at)
        assert not runner.paused
    if runner.alive:
        at.button(key="stop").click().run()
        no_exception(at)
    runner.join(30)
    assert not runner.alive
    at.run()
    no_exception(at)
    assert reg.status(run_id) in ("stopped", "finished")


def test_a_bad_folder_is_a_readable_error_and_the_app_keeps_working(runs_dir, tmp_path):
    at = app().run()
    at.sidebar.selectbox(key="data_name").set_value("folder").run()
    at.sidebar.text_input(key="data_root").set_value(str(tmp_path / "no-such-folder")).run()
    no_exception(at)
    at.sidebar.button(key="train").click().run()
    no_exception(at)
    assert any("Cannot" in e.value for e in at.error), [e.value for e in at.error]
    assert registry_of(at).runs() == []
    at.sidebar.selectbox(key="data_name").set_value("shapes").run()
    no_exception(at)


def test_a_failed_run_shows_its_error(runs_dir):
    store = RunStore(runs_dir)
    run = store.create(RunConfig())
    run.append_metric({"type": "failed", "error": "the loss became nan at step 7"})
    run.write_summary({"status": "failed", "error": "the loss became nan at step 7"})
    at = app({"run": run.id}).run()
    no_exception(at)
    assert any("nan at step 7" in e.value for e in at.error)


def test_the_run_picker_lists_the_newest_runs_and_the_one_shown(runs_dir, monkeypatch):
    """A workshop makes hundreds of runs and every page holds its picker's labels: the picker
    lists the newest few, plus the run the page shows however old it is."""
    from app import run_info

    monkeypatch.setattr(run_info, "PICKER_RUNS", 3)
    store = RunStore(runs_dir)
    ids = []
    for second in range(5):
        with monkeypatch.context() as clock:
            clock.setattr(time, "time", lambda s=second: 1_800_000_000.0 + s)
            ids.append(store.create(RunConfig(), owner="tester").id)
    at = app({"run": ids[0]}).run()
    no_exception(at)
    assert picker(at, "Run").options == [run_info.label(store.get(i)) for i in
                                         (ids[4], ids[3], ids[2], ids[0])]
    assert picker(at, "Run").value == ids[0]


def test_a_run_with_a_damaged_config_says_so_and_the_pages_keep_working(runs_dir):
    store = RunStore(runs_dir)
    run = store.create(RunConfig())
    (run.path / "config.json").write_text('{"data": {"name": "shapes", ')  # cut short
    at = app({"run": run.id}).run()
    no_exception(at)
    assert any("config.json cannot be read" in e.value and run.id in e.value for e in at.error)
    for page in ("app/pages/explore.py", "app/pages/compare.py", "app/pages/runs.py"):
        at.switch_page(page).run()
        no_exception(at)


def test_the_live_panel_charts_every_scalar_the_method_logs(runs_dir):
    import json

    store = RunStore(runs_dir)
    run = store.create(RunConfig())
    for step in range(1, 6):
        run.append_metric({"type": "step", "step": step, "epoch": step / 10, "loss": 5.0 - step,
                           "lr": 1e-3 * step, "progress": step / 5, "images_per_s": 100.0,
                           "elapsed": float(step), "time": 1.7e9 + step, "contrast_acc": 0.1 * step,
                           "tau": 0.99 + 0.002 * step, "invariance": 2.0 / step})
    run.append_metric({"type": "finished", "status": "finished", "reason": "time budget",
                       "steps": 5})
    run.write_summary({"status": "finished"})
    at = app({"run": run.id}).run()
    no_exception(at)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    panels = [s for s in specs if "what the method logs" in s["layout"]["title"]["text"]]
    assert len(panels) == 1, [s["layout"]["title"]["text"] for s in specs]
    titles = [a["text"] for a in panels[0]["layout"]["annotations"]]
    assert titles == ["learning rate", "contrastive accuracy", "target momentum τ",
                      "invariance term"]
    tau = next(t for t in panels[0]["data"] if t["name"] == "target momentum τ")
    assert tau["x"] == [1, 2, 3, 4, 5] and tau["y"][-1] == pytest.approx(1.0)


# -- Explore, Compare, Runs ------------------------------------------------------------------
def test_explore_without_runs_says_what_to_do(runs_dir):
    at = app()
    at.run()
    at.switch_page("app/pages/explore.py").run()
    no_exception(at)
    assert "Train" in texts(at)


def test_explore_draws_the_map_and_a_query_s_neighbours(two_runs, monkeypatch):
    root, ids = two_runs
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(root))
    at = app({"run": ids[0]})
    at.run()
    at.switch_page("app/pages/explore.py").run()
    no_exception(at)
    at.radio(key="explore_kind").set_value("pca").run()
    no_exception(at)
    assert picker(at, "Run").value == ids[0]
    assert at.selectbox(key="explore_colour").options[:2] == ["class", "colour"]
    at.button(key="explore_random").click().run()
    no_exception(at)
    assert "nearest neighbours" in texts(at)
    assert "precision@10" in texts(at)
    at.selectbox(key="explore_colour").set_value("colour").run()
    at.slider(key="explore_k").set_value(5).run()
    no_exception(at)
    assert "precision@5" in texts(at)
    at.radio(key="explore_feature").set_value("h").run()
    no_exception(at)


def test_compare_shows_both_runs_metrics_and_neighbours(two_runs, monkeypatch):
    root, ids = two_runs
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(root))
    at = app({"a": ids[0], "b": ids[1]})
    at.run()
    at.switch_page("app/pages/compare.py").run()
    no_exception(at)
    at.radio(key="compare_kind").set_value("pca").run()
    no_exception(at)
    assert {picker(at, "Run A").value, picker(at, "Run B").value} == set(ids)
    table = at.dataframe[0].value
    assert len(table) == 2 and "precision@10 (class)" in table.columns
    at.button(key="compare_random").click().run()
    no_exception(at)
    assert "**A**: neighbours" in texts(at) and "**B**: neighbours" in texts(at)


def runs_page(two_runs, monkeypatch) -> tuple[AppTest, list[str]]:  # noqa: ANN001
    """The Runs page over the two fixture runs, and their ids."""
    root, ids = two_runs
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(root))
    at = app()
    at.run()
    at.switch_page("app/pages/runs.py").run()
    no_exception(at)
    return at, ids


def test_runs_lists_every_run_on_disk(two_runs, monkeypatch):
    at, ids = runs_page(two_runs, monkeypatch)
    table = at.dataframe[0].value
    assert set(table["run"]) == set(ids)
    assert set(table["method"]) == {"supcon", "cross_entropy"}
    assert set(table["status"]) == {"finished"}


def test_runs_page_without_runs(runs_dir):
    at = app()
    at.run()
    at.switch_page("app/pages/runs.py").run()
    no_exception(at)
    assert "No runs yet" in texts(at)


# -- Participants ----------------------------------------------------------------------------
def test_a_first_visit_asks_for_a_name_and_keeps_it_in_the_url(runs_dir):
    at = app(who=None).run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Welcome to SSL Studio"]
    assert not at.sidebar.selectbox  # nothing else until a name is given
    at.text_input(key="participant_name_input").set_value("  Ada \t Lovelace ")
    at.button[0].click().run()
    no_exception(at)
    assert at.query_params["who"] in (["Ada Lovelace"], "Ada Lovelace")
    assert at.sidebar.selectbox(key="data_name").value == "shapes"
    assert "**Ada Lovelace**" in " ".join(m.value for m in at.sidebar.markdown)


def _someone_elses_run(at: AppTest) -> str:
    from engine.train.participants import Actor

    cfg = RunConfig().with_overrides({**TINY, "train.epochs": 0, "train.max_seconds": 60})
    return registry_of(at).submit(cfg, Actor("bob"))


def test_only_the_owner_or_the_instructor_may_steer_a_run(runs_dir, monkeypatch):
    from engine.train.participants import Actor

    monkeypatch.setenv("SSL_STUDIO_INSTRUCTOR_TOKEN", "s3cret")
    at = app().run()
    run_id = _someone_elses_run(at)
    reg = registry_of(at)
    try:
        at = app({"run": run_id}, who="ada").run()
        no_exception(at)
        assert "Started by **bob**" in texts(at)
        assert not [b for b in at.button if b.key in ("stop", "cancel", "pause")]
        assert picker(at, "Run").value == run_id
        assert any(" · bob · " in o for o in picker(at, "Run").options)
        at = app({"run": run_id, "token": "wrong"}, who="ada").run()
        assert "This token is not the instructor's." in texts(at)
        assert not [b for b in at.button if b.key in ("stop", "cancel", "pause")]
        at = app({"run": run_id, "token": "s3cret"}, who="ada").run()
        no_exception(at)
        assert "instructor" in " ".join(m.value for m in at.sidebar.markdown)
        stop = [b for b in at.button if b.key in ("stop", "cancel")]
        assert stop, [b.key for b in at.button]
        stop[0].click().run()
        no_exception(at)
        assert reg.status(run_id) == "stopped"
    finally:
        reg.stop(run_id, Actor("", instructor=True))


def test_runs_page_shows_owners_and_my_runs(two_runs, monkeypatch):
    at, ids = runs_page(two_runs, monkeypatch)
    assert set(at.dataframe[0].value["owner"]) == {"cli"}
    at.segmented_control(key="runs_scope_switch").set_value("My runs").run()
    no_exception(at)
    assert "You have no runs yet" in texts(at)


def test_the_live_panel_redraws_the_page_when_the_run_changed_while_it_was_drawn(
        runs_dir, monkeypatch):
    """A run that starts (or ends) while the Train page is being drawn: the live panel must
    compare what it polls with the status the picker drew, not with the newer one it read
    itself, or it never sees a change and the label (and the buttons) stay wrong for the rest
    of the run."""
    from app import run_info
    from engine.train.store import RunDir

    run = RunStore(runs_dir).create(RunConfig(), owner="tester", status="loading")
    started = []  # the run starts right after the picker has read its label
    monkeypatch.setattr(RunDir, "status", lambda self: "running" if started else "loading")
    labels = run_info.labels

    def labels_then_start(runs):  # noqa: ANN001, ANN202
        drawn = labels(runs)
        started.append(True)
        return drawn

    monkeypatch.setattr(run_info, "labels", labels_then_start)
    at = app({"run": run.id}).run()
    no_exception(at)
    # the panel saw "running" where the picker had drawn "loading" and redrew the page
    shown = picker(at, "Run")
    assert shown.value == run.id and shown.options[0].endswith("· running"), shown.options
    assert at.session_state["live_status"] == (run.id, "running")


def test_the_data_tab_names_the_skipped_files(runs_dir, tmp_path):
    root = fx.write_class_folder(tmp_path / "pets", per_class=5)
    fx.write_corrupt(root / "red" / "broken.jpg")
    (root / "green" / "notes.txt").write_text("not an image")
    at = app().run()
    at.sidebar.selectbox(key="data_name").set_value("folder").run()
    at.sidebar.text_input(key="data_root").set_value(str(root)).run()
    no_exception(at)
    warning = " ".join(w.value for w in at.warning)
    assert "2 file(s) could not be read" in warning
    assert "broken.jpg" in warning and "notes.txt" in warning, warning
