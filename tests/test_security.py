"""LAN mode's data roots: a folder outside the allow-list is refused before anything is read,
a link out of an allowed folder is not followed, the walk stops at its cap, and messages say
nothing about paths the server does not share."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.config import DataConfig, RunConfig
from engine.data import DataError, clear_memory_cache, load_dataset
from engine.data.roots import DataRootRefused, check_allowed
from engine.preflight import check_run


def _images(folder: Path, n: int, prefix: str = "img") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(n):
        pixels = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{prefix}{i}.png")


@pytest.fixture
def lan(tmp_path, monkeypatch):
    """LAN mode with one data root, ``tmp_path/shared``; caches under ``tmp_path/cache``."""
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("SSL_STUDIO_LAN", "1")
    monkeypatch.setenv("SSL_STUDIO_DATA_ROOTS", str(shared))
    monkeypatch.setenv("SSL_STUDIO_DATA", str(tmp_path / "cache"))
    clear_memory_cache()
    yield shared
    clear_memory_cache()


def _watch_reads(monkeypatch, forbidden: Path) -> list[str]:
    """Record every open, listing and walk of a path under ``forbidden``."""
    touched: list[str] = []
    real_open, real_scandir, real_walk = builtins.open, os.scandir, os.walk

    def check(path: object) -> None:
        if isinstance(path, str | os.PathLike) and str(forbidden) in os.fspath(path):
            touched.append(os.fspath(path))

    def spy_open(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        check(path)
        return real_open(path, *args, **kwargs)

    def spy_scandir(path=".", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        check(path)
        return real_scandir(path, *args, **kwargs)

    def spy_walk(top, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        check(top)
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "scandir", spy_scandir)
    monkeypatch.setattr(os, "walk", spy_walk)
    return touched


def test_a_folder_outside_the_data_roots_is_refused_and_nothing_is_read(lan, tmp_path,
                                                                       monkeypatch):
    outside = tmp_path / "private"
    _images(outside / "cats", 4)
    touched = _watch_reads(monkeypatch, outside)
    cfg = DataConfig(name="folder", root=str(outside))
    with pytest.raises(DataRootRefused) as refused:
        load_dataset(cfg)
    with pytest.raises(ValueError) as checked:
        check_run(RunConfig(data=cfg))
    assert touched == []
    for message in (str(refused.value), str(checked.value)):
        assert "private" not in message and "cats" not in message and "img0" not in message
        assert str(lan) in message  # it says where images may come from
    with pytest.raises(PermissionError):
        check_allowed(str(lan / ".." / "private"))


def test_a_folder_inside_a_data_root_loads_and_relative_paths_start_there(lan):
    _images(lan / "mine" / "a", 5)
    _images(lan / "mine" / "b", 5)
    ds = load_dataset(DataConfig(name="folder", root="mine", image_size=8))
    assert ds.class_names == ["a", "b"] and len(ds.train) + len(ds.test) == 10


def test_links_out_of_an_allowed_folder_are_not_followed(lan, tmp_path, monkeypatch):
    outside = tmp_path / "private"
    _images(outside / "secret", 3, prefix="s")
    data = lan / "mine"
    _images(data / "a", 5)
    (data / "b").symlink_to(outside / "secret", target_is_directory=True)  # a class folder
    (data / "a" / "leak.png").symlink_to(outside / "secret" / "s0.png")  # one file
    (data / "a" / "loop").symlink_to(data, target_is_directory=True)  # a link inside: fine
    touched = _watch_reads(monkeypatch, outside)
    ds = load_dataset(DataConfig(name="folder", root=str(data), image_size=8))
    assert ds.class_names == ["a"]
    assert len(ds.train) + len(ds.test) == 5
    assert touched == []
    assert ds.skipped == 2 and "b (a link out of the folder)" in ds.skipped_examples


def test_outside_lan_mode_links_are_followed(tmp_path, monkeypatch):
    monkeypatch.delenv("SSL_STUDIO_LAN", raising=False)
    monkeypatch.setenv("SSL_STUDIO_DATA", str(tmp_path / "cache"))
    clear_memory_cache()
    _images(tmp_path / "elsewhere", 4)
    _images(tmp_path / "mine" / "a", 4)
    (tmp_path / "mine" / "b").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    ds = load_dataset(DataConfig(name="folder", root=str(tmp_path / "mine"), image_size=8))
    assert ds.class_names == ["a", "b"]


def test_the_walk_stops_at_the_file_cap_with_a_clear_message(lan, monkeypatch):
    _images(lan / "big" / "a", 12)
    monkeypatch.setenv("SSL_STUDIO_MAX_FILES", "10")
    with pytest.raises(DataError, match="more than 10 files.*SSL_STUDIO_MAX_FILES"):
        load_dataset(DataConfig(name="folder", root=str(lan / "big"), image_size=8))
    with pytest.raises(ValueError, match="more than 10 files"):
        check_run(RunConfig(data=DataConfig(name="folder", root=str(lan / "big"))))


def test_a_missing_folder_in_lan_mode_lists_nothing_beside_it(lan):
    _images(lan / "holiday_photos", 2)
    (lan / "other_project").mkdir()
    with pytest.raises(ValueError) as missing:
        check_run(RunConfig(data=DataConfig(name="folder", root=str(lan / "missing"))))
    message = str(missing.value)
    assert "does not exist" in message and message.startswith("data.root")
    assert "holiday_photos" not in message and "other_project" not in message


@pytest.mark.usefixtures("no_umap_warm_up", "runs_dir")
def test_the_train_page_in_lan_mode_names_the_roots_and_refuses_others(lan, tmp_path):
    from streamlit.testing.v1 import AppTest

    from tests.fixtures.app import APP, TIMEOUT, no_exception

    _images(tmp_path / "private" / "cats", 4)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["who"] = "tester"
    at.run()
    at.sidebar.selectbox(key="data_name").set_value("folder").run()
    no_exception(at)
    assert any(str(lan) in c.value for c in at.sidebar.caption)
    at.sidebar.text_input(key="data_root").set_value(str(tmp_path / "private")).run()
    no_exception(at)
    shown = "\n".join(e.value for e in at.error)
    assert "data folder" in shown and "private" not in shown and "cats" not in shown, shown
