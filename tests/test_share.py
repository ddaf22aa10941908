"""Shareable runs: ``python -m engine export-run`` makes one archive of a run, ``import-run``
adds it to another runs folder, where it reads the same and Explore and Compare draw it with the
same kNN figures and its pictures although the data set is gone; a damaged or hostile archive is
refused with a message and leaves nothing behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.data import load_dataset
from engine.share.archive import export_run, import_run
from engine.train.store import RunStore
from tests.fixtures.app import TIMEOUT, no_exception, open_app, texts
from tests.fixtures.trained_run import train_on_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Two runs trained on an image folder, exported, the folder deleted, then imported into
    a fresh runs folder: (original store, imported store, the two run ids)."""
    tmp = tmp_path_factory.mktemp("share")
    store, first, folder = train_on_folder(tmp)
    _, second, _ = train_on_folder(tmp / "again", method="byol")
    archives = []
    for run in (first, second):
        done = subprocess.run([sys.executable, "-m", "engine", "export-run", run.id, "--out",
                               str(tmp / "archives"), "--runs-dir", str(run.path.parent)],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        archives.append(json.loads(done.stdout)["archive"])
    originals = {r.id: r for r in (first, second)}
    cfg = first.config().data
    shutil.rmtree(folder)
    shutil.rmtree(tmp / "again" / "images")
    with pytest.raises(Exception):  # noqa: B017 — the data set is really gone
        load_dataset(cfg)
    fresh = RunStore(tmp / "elsewhere")
    for archive in archives:
        done = subprocess.run([sys.executable, "-m", "engine", "import-run", archive,
                               "--runs-dir", str(fresh.root)], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    return originals, fresh, [first.id, second.id], archives


def test_an_imported_run_reads_as_it_was(shared):
    originals, fresh, ids, _ = shared
    for run_id in ids:
        before, after = originals[run_id], fresh.get(run_id)
        assert after.status() == before.status() == "finished"
        assert after.config() == before.config()
        assert after.metrics() == before.metrics()
        assert after.snapshots() == before.snapshots()
        assert after.checkpoint_path() is not None
        for key in ("knn_top1", "linear_top1", "steps"):
            assert after.summary()[key] == before.summary()[key]
        assert after.summary()["imported_from"] == f"{run_id}.zip"
        np.testing.assert_array_equal(after.load_snapshot()["h"], before.load_snapshot()["h"])


def test_an_imported_encoder_exports_without_its_data_set(shared, tmp_path):
    from engine.encoder import export_encoder, load_encoder

    _, fresh, ids, _ = shared
    report = export_encoder(load_encoder(fresh, ids[0]), tmp_path / "enc", onnx=False)
    assert "encoder.torchscript.pt" in report["files"]


st_testing = pytest.importorskip("streamlit.testing.v1")


def test_explore_draws_an_imported_run_with_its_pictures(shared, monkeypatch):
    _, fresh, ids, _ = shared
    at = open_app(monkeypatch, fresh.root, {"run": ids[0]}).run()
    at.switch_page("app/pages/explore.py").run()
    at.radio(key="explore_kind").set_value("pca").run()
    at.button(key="explore_random").click().run()
    no_exception(at)
    assert not at.warning, [w.value for w in at.warning]  # no "images cannot be shown"
    assert len(at.get("image")) >= 11
    assert any(c in texts(at) for c in ("red", "green", "blue"))


def test_compare_shows_the_same_knn_figures_after_import(shared, monkeypatch):
    originals, fresh, ids, _ = shared
    at = open_app(monkeypatch, fresh.root, {"a": ids[0], "b": ids[1]}).run()
    at.switch_page("app/pages/compare.py").run()
    at.radio(key="compare_kind").set_value("pca").run()
    no_exception(at)
    table = at.dataframe[0].value
    assert [m in r for m, r in zip(("simclr", "byol"), table["run"], strict=True)] == [True] * 2
    for row, run_id in enumerate(ids):  # row 0 is run A, row 1 run B
        last = originals[run_id].metrics("eval")[-1]
        assert table["step"][row] == last["step"]
        assert table["kNN top-1 (class)"][row] == pytest.approx(last["knn_top1"])
        assert table["linear probe (final)"][row] == pytest.approx(
            originals[run_id].summary()["linear_top1"])
    at.button(key="compare_random").click().run()
    no_exception(at)
    assert "**A**: neighbours" in texts(at) and "**B**: neighbours" in texts(at)


# -- refusals ---------------------------------------------------------------------------------
def rewrite(archive: str, tmp_path: Path, change) -> Path:  # noqa: ANN001
    """A copy of ``archive`` with its members passed through ``change(name, data)``, which
    returns a list of (name, data) to write instead."""
    out = tmp_path / "changed.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            for name, data in change(info.filename, src.read(info)):
                dst.writestr(name, data)
    return out


@pytest.mark.parametrize("hostile", ["../evil.txt", "/etc/evil", "{id}/../../evil",
                                     "{id}/snapshots/../../evil.npz", "{id}/evil.sh",
                                     "other-run/config.json", "{id}\\..\\evil"])
def test_archive_members_cannot_leave_the_run(shared, tmp_path, hostile):
    _, _, ids, archives = shared
    name = hostile.format(id=ids[0])
    bad = rewrite(archives[0], tmp_path,
                  lambda n, d: [(n, d)] + ([(name, b"x")] if n.endswith("config.json") else []))
    store = RunStore(tmp_path / "runs")
    with pytest.raises(ValueError, match="unexpected member|exactly one run"):
        import_run(bad, store)
    assert list(store.root.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "evil").exists()


def test_a_link_in_an_archive_is_refused(shared, tmp_path):
    _, _, ids, archives = shared
    out = tmp_path / "link.zip"
    with zipfile.ZipFile(archives[0]) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename.endswith("summary.json"):
                link = zipfile.ZipInfo(info.filename)
                link.external_attr = (0o120777 << 16)
                dst.writestr(link, "/etc/passwd")
            else:
                dst.writestr(info, src.read(info))
    with pytest.raises(ValueError, match="unexpected member"):
        import_run(out, RunStore(tmp_path / "runs"))


def test_a_damaged_archive_is_refused_and_leaves_nothing(shared, tmp_path):
    _, _, ids, archives = shared
    bad = rewrite(archives[0], tmp_path, lambda n, d: [(n, d.replace(b"knn_top1",
                                                                      b"knn_topX"))])
    store = RunStore(tmp_path / "runs")
    with pytest.raises(ValueError, match="does not match its checksum"):
        import_run(bad, store)
    assert list(store.root.iterdir()) == []
    (tmp_path / "not.zip").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(ValueError, match="not a run archive"):
        import_run(tmp_path / "not.zip", store)
    done = subprocess.run([sys.executable, "-m", "engine", "import-run", str(bad),
                           "--runs-dir", str(store.root)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "checksum" in done.stderr


def test_importing_twice_is_refused(shared):
    _, fresh, _, archives = shared
    with pytest.raises(FileExistsError, match="already in"):
        import_run(archives[0], fresh)


def test_export_run_in_process_keeps_a_tracked_run_s_pictures(tmp_path):
    from engine import track

    with track.start("shared", runs_dir=tmp_path / "a") as run:
        run.log(0, loss=1.0)
        run.embeddings(1, h=np.random.rand(10, 4), labels=np.arange(10) % 2,
                       images=np.zeros((10, 3, 4, 4), np.uint8))
    archive = export_run(run.dir, tmp_path)
    names = zipfile.ZipFile(archive).namelist()
    assert f"{run.id}/tracked.json" in names and f"{run.id}/thumbnails.npz" not in names
    imported = import_run(archive, RunStore(tmp_path / "b"))
    assert "images" in imported.load_snapshot()


def _run_tools_page() -> None:
    import streamlit as st

    from app import run_tools

    run_tools.tools(st.query_params["run"])


def test_the_runs_page_evaluates_a_checkpoint_and_says_why_it_cannot(shared, tmp_path,
                                                                     monkeypatch):
    store, run, _ = train_on_folder(tmp_path)
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(store.root))
    at = st_testing.AppTest.from_function(_run_tools_page, default_timeout=TIMEOUT)
    at.query_params["run"] = run.id
    at.run()
    at.button(key="evaluate_checkpoint").click().run()
    no_exception(at)
    assert len(store.list()) == 2
    evaluation = next(r for r in store.list() if r.id != run.id)
    assert evaluation.summary()["evaluated_from"] == run.id
    assert f"Evaluated as `{evaluation.id}`" in at.success[0].value
    assert f"knn top1 {run.summary()['knn_top1']:.3f}" in at.success[0].value
    # an imported run whose data set is not here: the reason, no traceback
    _, fresh, ids, _ = shared
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(fresh.root))
    at = st_testing.AppTest.from_function(_run_tools_page, default_timeout=TIMEOUT)
    at.query_params["run"] = ids[0]
    at.run()
    at.button(key="evaluate_checkpoint").click().run()
    no_exception(at)
    assert "Cannot evaluate it" in at.error[0].value
