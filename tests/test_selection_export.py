"""A selection on the Explore map, downloaded: the CSV names each image's id, class and file,
and the zip holds the original files (an image folder) or PNGs of the map's pictures."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.trained_run import train_on_folder


@pytest.fixture
def snapshot(tmp_path, monkeypatch, no_umap_warm_up):
    store, run, folder = train_on_folder(tmp_path)
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(store.root))
    from app import mapview

    return mapview.load(run.id, run.snapshots()[-1]), folder


def test_the_csv_names_each_selected_image_and_its_file(snapshot):
    from app.selection_export import csv_bytes

    snap, folder = snapshot
    rows = [0, 3, 5]
    table = list(csv.DictReader(io.StringIO(csv_bytes(snap, rows).decode())))
    assert [int(t["id"]) for t in table] == [int(snap.arrays["index"][r]) for r in rows]
    for t, r in zip(table, rows, strict=True):
        assert t["class"] == snap.class_names[snap.labels[r]]
        assert Path(t["path"]).parent == folder / t["class"]  # the file of that class


def test_the_zip_holds_the_original_files_or_the_pictures(snapshot, monkeypatch):
    from app import selection_export

    snap, _ = snapshot
    with zipfile.ZipFile(io.BytesIO(selection_export.zip_bytes(snap, [1, 2]))) as zf:
        names = zf.namelist()
        table = selection_export.rows_table(snap, [1, 2])
        assert [n.endswith(".png") for n in names] == [True, True]
        assert zf.read(names[0]) == Path(table[0]["path"]).read_bytes()  # the file itself
    monkeypatch.setattr(selection_export, "test_paths", lambda run_id: None)  # not files
    with zipfile.ZipFile(io.BytesIO(selection_export.zip_bytes(snap, [1]))) as zf:
        from PIL import Image

        picture = np.asarray(Image.open(io.BytesIO(zf.read(zf.namelist()[0]))))
        assert picture.shape == (16, 16, 3)
        np.testing.assert_array_equal(picture, snap.thumbs[1].numpy().transpose(1, 2, 0))


def _downloads_page() -> None:
    import streamlit as st

    from app import mapview, selection_export

    run_id = st.query_params["run"]
    snap = mapview.load(run_id, int(st.query_params["step"]))
    selection_export.downloads(snap, [0, 1, 2])


def test_the_buttons_draw_under_a_selection(snapshot):
    from streamlit.testing.v1 import AppTest

    snap, _ = snapshot
    at = AppTest.from_function(_downloads_page, default_timeout=60)
    at.query_params["run"], at.query_params["step"] = snap.run_id, str(snap.step)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    buttons = [e for e in at.get("download_button")]
    assert len(buttons) == 2


def test_explore_shows_an_image_folder_s_own_files(tmp_path, monkeypatch, no_umap_warm_up):
    """The query and its neighbours are drawn from the original files (40 px here, trained
    at 16), until the folder changes: then from nothing the folder now holds."""
    from PIL import Image

    from app import mapview, state
    from app.selection_export import rows_table

    store, run, _ = train_on_folder(tmp_path, file_size=40)
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(store.root))
    snap = mapview.load(run.id, run.snapshots()[-1])
    assert snap.thumbs.shape[-1] == 16
    rows = rows_table(snap, [0, 1])
    pics = mapview.pictures(snap, [0, 1], size=80)  # enlarged pixel for pixel, 2x
    for pic, row in zip(pics, rows, strict=True):
        original = np.asarray(Image.open(row["path"]).convert("RGB"))
        np.testing.assert_array_equal(pic, original.repeat(2, 0).repeat(2, 1))
    assert mapview.pictures(snap, [0], size=280)[0].shape == (280, 280, 3)  # 7x

    Image.new("RGB", (40, 40), (10, 200, 30)).save(rows[1]["path"])  # edited since the run
    mapview.test_paths.clear()
    mapview._load.clear()
    snap = mapview.load(run.id, run.snapshots()[-1])
    # this process still holds the images the run trained on: those, not the files
    assert all("path" not in row for row in rows_table(snap, [0, 1]))
    np.testing.assert_array_equal(mapview.pictures(snap, [1], size=16)[0],
                                  snap.thumbs[1].numpy().transpose(1, 2, 0))
    state._dataset.clear()  # a server started after the edit: nothing to draw them from
    mapview._load.clear()
    snap = mapview.load(run.id, run.snapshots()[-1])
    assert snap.thumbs is None and "has changed since this run trained" in snap.data_error
    assert mapview.pictures(snap, [0, 1], size=80) is None
