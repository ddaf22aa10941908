"""The augmentation studio on the Explore page under Streamlit's AppTest: a profile computed
on request in the background and charted, a view cloud drawn, a sweep's table with links to its
runs, the export of the run's pipeline."""

from __future__ import annotations

import pytest

from engine.config import RunConfig
from engine.train.runner import run_foreground
from engine.train.store import RunStore
from engine.train.sweep import Sweep
from tests.fixtures.app import APP, TIMEOUT, no_exception, texts
from tests.fixtures.tiny_runs import TINY

st_testing = pytest.importorskip("streamlit.testing.v1")
SETTINGS = {**TINY, "data.name": "shapes", "train.device": "cpu", "train.epochs": 1,
            "train.max_seconds": 0, "eval.diagnostics_every_steps": 0}

pytestmark = pytest.mark.usefixtures("no_umap_warm_up")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("runs")
    run, last = run_foreground(RunConfig().with_overrides(SETTINGS), RunStore(root))
    assert last["type"] == "finished", last.get("error")
    return root, run


def explore(monkeypatch, root, run_id: str, tab: str = "Invariance profile"):  # noqa: ANN001, ANN201
    """The Explore page on ``run_id`` with the studio's ``tab`` open (only it is drawn)."""
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(root))
    monkeypatch.setenv("SSL_STUDIO_PROFILE_QUERIES", "64")
    at = st_testing.AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["who"] = "tester"
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("app/pages/explore.py").run()
    no_exception(at)
    at.radio(key="explore_kind").set_value("pca").run()
    if tab != "Invariance profile":
        at.session_state["studio_tab"] = tab
        at.run()
        no_exception(at)
    return at


def test_profile_is_computed_on_request_and_charted(trained, monkeypatch) -> None:  # noqa: ANN001
    root, run = trained
    at = explore(monkeypatch, root, run.id)
    assert "Augmentation studio" in [h.value for h in at.header]
    at.button(key="studio_profile_a").click().run()
    no_exception(at)
    from app.studio import profile_jobs

    assert profile_jobs().wait(120)
    at.run()
    no_exception(at)
    charts = [c for c in at.get("plotly_chart") if "augmented copy" in str(c.proto.spec)]
    assert len(charts) == 1, "no profile chart"
    assert "test images against a bank of 128" in texts(at)
    assert list((run.path / "studio").glob("profile_step_*.json"))


def test_view_cloud_is_drawn_on_the_map(trained, monkeypatch) -> None:  # noqa: ANN001
    root, run = trained
    at = explore(monkeypatch, root, run.id)
    at.button(key="explore_random").click().run()  # an image picked on the Explore page
    at.session_state["studio_tab"] = "View cloud"
    at.run()
    no_exception(at)
    assert not [b for b in at.button if b.key == "studio_profile_a"]  # only the open tab
    picked = at.session_state["explore_query"]
    assert at.number_input(key="studio_row").value == picked  # the studio starts on it
    other = (picked + 1) % 128
    at.number_input(key="studio_row").set_value(other).run()
    at.button(key="studio_use_pick").click().run()  # and goes back to it on request
    assert at.number_input(key="studio_row").value == picked
    at.number_input(key="studio_row").set_value(3).run()
    at.selectbox(key="studio_source").set_value("rotation").run()
    at.button(key="studio_cloud_go").click().run()
    no_exception(at)
    labels = [m.label for m in at.metric]
    assert "Mean cosine, view to source" in labels
    assert "View cloud of image #" in texts(at) and "neighbours' positions" in texts(at)


def test_sweep_table_links_its_runs_and_export_shows_code(trained, monkeypatch) -> None:  # noqa: ANN001
    root, run = trained
    base = RunConfig().with_overrides(SETTINGS)
    sweep = Sweep.new(base, "leave_one_out", budget_seconds=5)
    sweep.cells[0].run_id = run.id  # one cell done, the rest still to come
    sweep.save(root)
    at = explore(monkeypatch, root, run.id, "Ablation sweep")
    assert "runs of 90 s each" in texts(at)
    assert "1 of 5 runs finished" in texts(at)
    frame = at.dataframe[0].value
    assert frame["run"].iloc[0].startswith(f"explore?run={run.id}")
    assert frame["status"].tolist()[:2] == ["finished", "pending"]
    at.session_state["studio_tab"] = "Export"
    at.run()
    no_exception(at)
    code = "\n".join(c.value for c in at.code)
    assert '"views"' in code
    at.radio(key="studio_export_show").set_value("torchvision").run()
    code = "\n".join(c.value for c in at.code)
    assert "v2.Compose" in code and "v2.RandomResizedCrop" in code


def test_a_profile_that_ends_while_its_progress_line_is_drawn_does_not_leave_it_there(
        trained, monkeypatch) -> None:  # noqa: ANN001
    """The profile job ends between the page drawing its progress line and deciding whether to
    poll: the page must poll anyway (and redraw), not keep 'Computing…' on screen for good."""
    from engine.eval.profile_jobs import ProfileJobs

    root, run = trained
    at = explore(monkeypatch, root, run.id)
    drawn = []  # the first look says computing; by the time the page asks again it has ended

    def status(self, run_id: str) -> str:  # noqa: ANN001
        drawn.append(run_id)
        return "computing" if len(drawn) == 1 else "idle"

    monkeypatch.setattr(ProfileJobs, "status", status)
    monkeypatch.setattr(ProfileJobs, "busy", lambda self: False)
    monkeypatch.setattr(ProfileJobs, "cached", lambda self, run: None)
    at.run()
    no_exception(at)
    assert len(drawn) >= 2, "the page was not redrawn after the job ended"
    assert not at.get("progress"), "the progress line of an ended job is still on screen"
    assert [b for b in at.button if b.key == "studio_profile_a"]
