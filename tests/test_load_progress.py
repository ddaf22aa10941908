"""A large image folder takes minutes to read: the loader says how far it is, to the command
line, to a run's "Starting: ..." line and to the app (a toast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import cli
from engine.config import RunConfig
from engine.data import load_dataset, progress
from engine.train.runner import run_foreground
from engine.train.store import RunStore
from tests.fixtures import data_files as fx
from tests.fixtures.app import app, no_exception
from tests.fixtures.data_env import cfg
from tests.fixtures.tiny_runs import TINIER


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """300 images in 3 classes: two chunks of the loader's 256."""
    return fx.write_class_folder(tmp_path / "pets", per_class=100, exts=(".png",))


@pytest.fixture
def says_everything(monkeypatch):
    monkeypatch.setattr(progress, "AFTER_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)


def test_a_quick_load_says_nothing_and_a_slow_one_how_far_it_is():
    said: list[str] = []
    with progress.reporting(said.append, every=10.0, after=10.0):
        for done in (256, 300):
            progress.tell("reading images", done, 300)
    assert said == []  # under a second (here ten): not a word, not even the end
    with progress.reporting(said.append, every=10.0, after=0.0):
        for done in (100, 200, 300, 400):
            progress.tell("reading images", done, 400)
    # the first word at once, the next ones not before 10 s, the end always once it spoke
    assert said == ["reading images: 100 of 400", "reading images: 400 of 400"]
    said.clear()
    with progress.reporting(said.append, every=0.0, after=0.0):
        progress.tell("reading images", 100, 400)
        progress.tell("reading images", 200, 400)
    assert said[0] == "reading images: 100 of 400"
    assert said[1].startswith("reading images: 200 of 400, about ") and said[1].endswith(" s left")
    progress.tell("reading images", 1, 2)  # outside a block: no one listens, nothing fails


def test_the_folder_loader_tells_the_images_it_has_read(folder, tmp_path, says_everything):
    said: list[str] = []
    with progress.reporting(said.append):
        ds = load_dataset(cfg(tmp_path, name="folder", root=str(folder), image_size=16))
    assert len(ds.train) + len(ds.test) == 300
    assert said[0] == "reading images: 256 of 300"
    assert said[-1] == "reading images: 300 of 300"


def test_a_run_s_starting_line_says_how_far_its_data_is(folder, tmp_path, says_everything):
    run_cfg = RunConfig().with_overrides({
        **TINIER, "data.name": "folder", "data.root": str(folder),
        "data.data_dir": str(tmp_path / "cache"), "train.epochs": 1, "train.max_seconds": 0,
        "train.device": "cpu"})
    run, last = run_foreground(run_cfg, RunStore(tmp_path / "runs"))
    assert last["type"] == "finished", last
    loading = [e["message"] for e in run.metrics("status") if e["status"] == "loading"]
    assert loading[0] == "loading data"
    assert "reading images: 256 of 300" in loading and loading[-1] == "reading images: 300 of 300"


def test_the_command_line_says_how_far_its_data_is(folder, tmp_path, says_everything,
                                                   capsys):
    rc = cli.main(["train", "--runs-dir", str(tmp_path / "runs"), "--quiet",
                   "--set", "data.name=folder", "--set", f"data.root={folder}",
                   "--set", f"data.data_dir={tmp_path / 'cache'}", "--set", "data.image_size=16",
                   "--set", "train.epochs=0", "--set", "train.max_seconds=0",
                   "--set", "train.device=cpu"])
    assert rc == 0
    err = capsys.readouterr().err.splitlines()
    assert "reading images: 256 of 300" in err and "reading images: 300 of 300" in err, err


def test_the_app_shows_a_first_load_in_a_toast(folder, runs_dir, says_everything):
    at = app().run()
    at.sidebar.selectbox(key="data_name").set_value("folder").run()
    at.sidebar.text_input(key="data_root").set_value(str(folder)).run()
    no_exception(at)
    assert f"Loaded {folder}" in [t.value for t in at.toast]
    at.run()  # loaded: no toast again
    no_exception(at)
    assert not [t.value for t in at.toast if "Loaded" in t.value]


def test_a_load_that_fails_after_reading_says_so_in_its_toast(tmp_path, runs_dir,
                                                            says_everything):
    broken = tmp_path / "broken"
    for name in ("a", "b"):
        for i in range(150):
            fx.write_corrupt(broken / name / f"{i}.png")
    at = app().run()
    at.sidebar.selectbox(key="data_name").set_value("folder").run()
    at.sidebar.text_input(key="data_root").set_value(str(broken)).run()
    no_exception(at)
    assert f"Could not load {broken}" in [t.value for t in at.toast]
    assert not [t.value for t in at.toast if t.value.startswith("Loaded")]
