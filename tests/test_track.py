"""engine.track: a plain PyTorch loop logged through the tracker makes a run directory that
RunDir reads and every page of the app draws; its collapse diagnostics fire the engine's alarm;
its status tells the truth (running while its process lives, interrupted once it is gone,
failed with the reason when the loop raises)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine import track
from engine.train.store import RunDir, RunStore
from tests.fixtures.app import no_exception, open_app, texts

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["red", "green", "blue"]


def images_and_labels(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n, 3, 8, 8) images whose colour is their class, and the classes (n,)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.randint(0, 60, (n, 3, 8, 8), generator=g, dtype=torch.uint8)
    images[torch.arange(n), labels] += 180
    return images, labels


class Encoder(nn.Module):
    """A small CNN (B, 3, 8, 8) -> h (B, 32) with a projector h -> z (B, 16)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.projector = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 16))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return h, self.projector(h)


def plain_loop(runs: Path, name: str, steps: int = 50, collapse: bool = False,
               every: int = 10) -> track.Run:
    """A SimCLR-style loop of ``steps`` steps on noisy views, logged through engine.track.
    ``collapse``: the logged z are one constant vector (a collapsed network)."""
    torch.manual_seed(0)
    images, labels = images_and_labels()
    x_all = images.float() / 255
    model = Encoder()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with track.start(name, config={"lr": 1e-2, "method": "simclr"}, runs_dir=runs,
                     class_names=CLASSES, batch_size=32, total_steps=steps,
                     emit_every=0) as run:
        for step in range(steps):
            idx = torch.randint(0, len(images), (32,))
            x = x_all[idx]
            _, z0 = model(x + 0.1 * torch.randn_like(x))
            _, z1 = model(x + 0.1 * torch.randn_like(x))
            a, b = nn.functional.normalize(z0, dim=1), nn.functional.normalize(z1, dim=1)
            logits = a @ b.T / 0.2
            loss = nn.functional.cross_entropy(logits, torch.arange(32))
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.log(step, loss=loss, lr=opt.param_groups[0]["lr"], pos_cos=(a * b).sum(1).mean())
            if step % every == 0 or step == steps - 1:
                with torch.no_grad():
                    h, z = model(x_all)
                if collapse:
                    z = torch.ones_like(z) + 1e-4 * torch.randn_like(z)
                    z0 = z1 = z[:32]
                run.views(step, z0, z1)
                run.embeddings(step, h=h, z=z, labels=labels, images=images,
                               attributes={"parity": torch.arange(len(images)) % 2})
    return run


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """Two healthy tracked runs of the same images (for Compare) and a collapsed one."""
    root = tmp_path_factory.mktemp("runs")
    healthy = [plain_loop(root, "plain loop a").id, plain_loop(root, "plain loop b").id]
    collapsed = plain_loop(root, "collapsed", collapse=True).id
    return root, healthy, collapsed


# -- the run directory ------------------------------------------------------------------------
def test_a_plain_loop_writes_a_run_directory_rundir_reads(tracked):
    root, (run_id, _), _ = tracked
    run = RunStore(root).get(run_id)
    assert run.status() == "finished"
    assert run.config().name == "plain loop a" and run.config().method.name == "simclr"
    steps = run.metrics("step")
    assert [e["step"] for e in steps] == list(range(50))  # emit_every=0: every logged step
    assert all(np.isfinite(e["loss"]) and e["lr"] == 1e-2 for e in steps)
    assert steps[-1]["progress"] == pytest.approx(49 / 50)
    assert "pos_cos" in steps[-1]
    assert run.snapshots() == [0, 10, 20, 30, 40, 49]
    snap = run.load_snapshot()
    assert snap["h"].shape == (96, 32) and snap["z"].shape == (96, 16)
    assert snap["images"].shape == (96, 3, 8, 8) and snap["images"].dtype == np.uint8
    assert list(snap["class_names"]) == CLASSES
    evals = run.metrics("eval")
    assert [e["step"] for e in evals] == run.snapshots()
    # colour is the class: kNN on the trained features reads it off
    assert evals[-1]["knn_top1"] > 0.9 and "knn_top1_z" in evals[-1] and "knn_parity" in evals[-1]
    diag = run.metrics("diagnostics")
    # three colours need few directions (a dimensional warning at most), never a collapse
    assert diag and all(d["alarm"]["severity"] != "critical" for d in diag), diag[-1]["alarm"]
    summary = run.summary()
    assert summary["owner"] == "track" and summary["knn_top1"] == evals[-1]["knn_top1"]
    assert summary["linear_top1"] > 0.9
    assert (run.path / "tracked.json").exists()


def test_collapsed_embeddings_fire_the_collapse_alarm(tracked):
    root, _, collapsed = tracked
    diag = RunStore(root).get(collapsed).metrics("diagnostics")
    last = diag[-1]
    assert last["views"] == 2
    assert last["alarm"]["kind"] == "complete" and last["alarm"]["severity"] == "critical"
    assert last["std_z"] < 0.01 and last["neg_cos_mean"] > 0.99
    assert last["alarm"]["causes"]  # simclr's usual causes, from the engine


def test_one_view_alone_still_fires_the_alarm(tmp_path):
    with track.start("one view", runs_dir=tmp_path) as run:
        run.log(1, loss=0.5)
        run.embeddings(5, h=torch.randn(64, 8), z=torch.ones(64, 4))
    diag = run.dir.metrics("diagnostics")
    assert len(diag) == 1 and diag[0]["views"] == 1
    assert diag[0]["alarm"]["kind"] == "complete"
    assert diag[0]["alignment"] is None and diag[0]["pos_hist"] is None


# -- status ---------------------------------------------------------------------------------
def test_a_live_run_reads_running_and_a_dead_process_interrupted(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys, time
        from engine import track
        run = track.start("killed", runs_dir={str(tmp_path)!r})
        run.log(1, loss=1.0)
        print(run.id, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        run = RunDir(tmp_path / proc.stdout.readline().strip())
        assert run.status() == "running"
        beat = run.summary()["heartbeat"]
        deadline = time.time() + 20
        while run.summary()["heartbeat"] == beat and time.time() < deadline:
            time.sleep(0.2)
        assert run.summary()["heartbeat"] > beat, "no heartbeat within 20 s"
    finally:
        proc.kill()
        proc.wait()
    assert run.summary()["status"] == "running"  # what the dead process left on disk
    assert run.status() == "interrupted"


def test_an_exception_in_the_loop_marks_the_run_failed_with_the_reason(tmp_path):
    with pytest.raises(RuntimeError), track.start("fails", runs_dir=tmp_path) as run:
        run.log(0, loss=1.0)
        raise RuntimeError("the loss became nan at step 3")
    assert run.dir.status() == "failed"
    assert run.dir.summary()["error"] == "the loss became nan at step 3"
    assert run.dir.metrics("failed")[0]["traceback"]
    assert run.dir.metrics("step")[0]["loss"] == 1.0  # what was queued was written first


def test_bad_input_is_refused_in_the_loop_with_a_readable_message(tmp_path):
    with track.start("bad", runs_dir=tmp_path) as run:
        with pytest.raises(ValueError, match="labels has 3 rows but h has 4"):
            run.embeddings(0, h=torch.zeros(4, 2), labels=[0, 1, 2])
        with pytest.raises(ValueError, match="images are uint8"):
            run.embeddings(0, h=torch.zeros(4, 2), images=torch.zeros(4, 3, 8, 8))
        with pytest.raises(ValueError, match="one element"):
            run.log(0, loss=torch.zeros(3))
        with pytest.raises(TypeError, match="loss"):
            run.log(0)
    with pytest.raises(RuntimeError, match="has ended"):
        run.log(1, loss=1.0)


def test_the_loop_never_waits_for_a_full_queue(tmp_path, monkeypatch):
    from engine.track import writer

    monkeypatch.setattr(writer, "QUEUE_SIZE", 2)
    run = track.start("full", runs_dir=tmp_path)
    monkeypatch.setattr(run.writer, "_handle", lambda m: time.sleep(0.5))  # a stalled writer
    t0 = time.perf_counter()
    for step in range(20):
        run.log(step, loss=1.0)
    assert time.perf_counter() - t0 < 0.2
    assert run.dropped >= 17
    run.finish()
    assert run.dir.summary()["dropped"] == run.dropped


# -- the app ----------------------------------------------------------------------------------


def test_the_train_page_shows_a_tracked_run_live_panel(tracked, monkeypatch):
    root, (run_id, _), collapsed = tracked
    at = open_app(monkeypatch, root, {"run": run_id}).run()
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Step"] == "49" and metrics["kNN top-1"] not in ("–", None)
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Training loss" in t for t in titles) and any("pos cos" in t for t in titles)
    assert "Collapse diagnostics" in texts(at)
    at = open_app(monkeypatch, root, {"run": collapsed}).run()
    no_exception(at)
    assert any("Complete collapse" in e.value for e in at.error), [e.value for e in at.error]


def test_the_runs_page_lists_tracked_runs(tracked, monkeypatch):
    root, healthy, collapsed = tracked
    at = open_app(monkeypatch, root, {}).run()
    at.switch_page("app/pages/runs.py").run()
    no_exception(at)
    table = at.dataframe[0].value
    assert set(table["run"]) == {*healthy, collapsed}
    assert set(table["owner"]) == {"track"} and set(table["status"]) == {"finished"}
    assert set(table["method"]) == {"simclr"} and set(table["backbone"]) == {"custom"}


def test_explore_draws_a_tracked_run_map_with_its_own_pictures(tracked, monkeypatch):
    root, (run_id, _), _ = tracked
    at = open_app(monkeypatch, root, {"run": run_id}).run()
    at.switch_page("app/pages/explore.py").run()
    no_exception(at)
    at.radio(key="explore_kind").set_value("pca").run()
    assert at.selectbox(key="explore_colour").options == ["class", "parity"]
    at.button(key="explore_random").click().run()
    no_exception(at)
    assert "nearest neighbours" in texts(at) and "precision@10" in texts(at)
    assert not at.warning, [w.value for w in at.warning]  # no data set needed for pictures
    assert len(at.get("image")) >= 11  # the query and its ten neighbours, as pictures
    assert any(name in texts(at) for name in CLASSES)


def test_compare_puts_two_tracked_runs_side_by_side(tracked, monkeypatch):
    root, (a, b), _ = tracked
    at = open_app(monkeypatch, root, {"a": a, "b": b}).run()
    at.switch_page("app/pages/compare.py").run()
    no_exception(at)
    at.radio(key="compare_kind").set_value("pca").run()
    no_exception(at)
    table = at.dataframe[0].value
    assert len(table) == 2 and "precision@10 (class)" in table.columns
    at.button(key="compare_random").click().run()
    no_exception(at)
    assert "**A**: neighbours" in texts(at) and "**B**: neighbours" in texts(at)


def test_track_imports_without_streamlit():
    code = ("import sys; import engine.track; "
            "assert 'streamlit' not in sys.modules, 'streamlit imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


def test_every_page_renders_beside_tracked_runs(tracked, monkeypatch):
    root, (run_id, _), _ = tracked
    at = open_app(monkeypatch, root, {"run": run_id}).run()
    no_exception(at)
    pages = sorted(p.name for p in (ROOT / "app" / "pages").glob("*.py"))
    assert {"compare.py", "explore.py", "runs.py", "train.py"} <= set(pages)
    for page in pages:
        at.switch_page(f"app/pages/{page}").run()
        no_exception(at)


def test_a_tracked_run_shows_live_while_it_trains(tmp_path, monkeypatch):
    run = track.start("live", runs_dir=tmp_path, total_steps=100, class_names=CLASSES)
    try:
        for step in range(1, 31):
            run.log(step, loss=1.0 / step, lr=0.1)
        run.views(30, torch.randn(16, 8), torch.randn(16, 8))
        assert run.flush(30)
        at = open_app(monkeypatch, tmp_path, {"run": run.id}).run()
        no_exception(at)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Step"] == "30" and metrics["Learning rate"] == "1.00e-01"
        assert "Time left" in metrics and at.get("progress")[0].value == 30
        assert "Collapse diagnostics" in texts(at)
        assert not at.success  # no "Finished" while it trains
    finally:
        run.finish()
    at.run()
    no_exception(at)
    assert any("Finished" in s.value for s in at.success)
