"""The app's small helpers: image layout, chart selections, the map legend, reading a run's
events from disk incrementally."""

from __future__ import annotations

import json

import numpy as np
import torch

from app import charts, images


def test_thumbnails_are_rgb_and_enlarged_without_blur():
    gray = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4)
    (t,) = images.thumbs(gray, size=16)
    assert t.shape == (16, 16, 3) and t.dtype == np.uint8
    assert set(np.unique(t)) == set(range(16))  # nearest neighbour: no new values


def test_grid_and_row_blocks_lay_out_pictures():
    x = torch.zeros(10, 3, 8, 8, dtype=torch.uint8)
    g = images.grid(x, columns=4, size=8, gap=2)
    assert g.shape == (3 * 10 - 2, 4 * 10 - 2, 3)
    tall = np.zeros((12 * 10, 30, 3), np.uint8)
    wide = images.row_blocks(tall, rows_per_block=4, rows=12, gap=5)
    assert wide.shape == (40, 3 * 30 + 2 * 5, 3)


def test_selected_rows_reads_customdata_and_point_indices():
    event = {"selection": {"points": [
        {"curve_number": 0, "point_index": 3, "customdata": 3},
        {"curve_number": 0, "point_index": 5},
        {"curve_number": 2, "point_index": 0, "customdata": [7]},
        {"curve_number": 0, "point_index": 3, "customdata": 3},
    ]}}
    assert charts.selected_rows(event) == [3, 5, 7]
    assert charts.selected_rows(None) == []
    assert charts.selected_rows({"selection": {}}) == []


def test_embedding_map_is_one_webgl_trace_with_rows_as_customdata():
    xy = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    codes = np.arange(50) % 4
    codes[0] = -1
    fig = charts.embedding_map(xy, codes, list("abcd"), [str(i) for i in range(50)])
    assert len(fig.data) == 1 and fig.data[0].type == "scattergl"
    assert list(fig.data[0].customdata) == list(range(50))
    assert _drawn_colour(fig.data[0].marker, 0) == charts.UNLABELLED
    assert [_drawn_colour(fig.data[0].marker, i) for i in range(1, 50)] == [
        charts.colour_of(int(c)) for c in codes[1:]]
    assert fig.layout.dragmode is None  # Streamlit's pan + click-to-select


def _drawn_colour(marker, i: int) -> str:  # noqa: ANN001
    """The colour Plotly draws point ``i`` in: its code's place on the stepped colour scale
    (the last step whose start is at or below it)."""
    at = (marker.color[i] - marker.cmin) / (marker.cmax - marker.cmin)
    return [colour for start, colour in marker.colorscale if start <= at][-1]


def test_big_maps_draw_smaller_fainter_points_and_a_jpeg_sheet_of_small_tiles():
    from app.hover import TILE, sprite_sheet, tile_size

    size, opacity = charts.marker_for(1000)
    assert (size, opacity) == (7, 0.85)
    s10, o10 = charts.marker_for(10_000)
    s50, o50 = charts.marker_for(50_000)
    assert size > s10 > s50 >= 2.5 and opacity > o10 > o50 >= 0.3
    assert tile_size(1000, 32) == 32 and tile_size(1000, 96) == TILE  # never enlarged
    assert tile_size(10_000, 32) == 32 and tile_size(50_000, 32) == 14
    small = np.zeros((10, 3, 32, 32), np.uint8)
    assert sprite_sheet(small)[0].startswith("data:image/png")
    url, columns, rows, tile = sprite_sheet(np.zeros((2500, 3, 32, 32), np.uint8))
    assert url.startswith("data:image/jpeg") and (columns, rows, tile) == (50, 50, 32)


def test_legend_names_every_colour_and_escapes_html():
    html = charts.legend_html(["<b>", "ring"], [3, 4])
    assert "&lt;b&gt;" in html and "ring" in html and "(4)" in html
    assert html.count("border-radius") == 2


def test_feed_reads_a_runs_log_incrementally_and_waits_for_torn_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_STUDIO_RUNS", str(tmp_path))
    from app.feed import Feed
    from engine.config import RunConfig
    from engine.train.store import RunStore

    run = RunStore(tmp_path).create(RunConfig())
    run.append_metric({"type": "step", "step": 1, "loss": 2.0})
    f = Feed(run.id).update()
    assert [e["step"] for e in f.events("step")] == [1]
    with open(run.path / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "step", "step": 2, "loss": 1.5})[:10])  # torn
    f.update()
    assert len(f.events("step")) == 1
    with open(run.path / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "step", "step": 2, "loss": 1.5})[10:] + "\n")
    run.append_metric({"type": "eval", "step": 2, "knn_top1": 0.5})
    f.update()
    assert [e["step"] for e in f.events("step")] == [1, 2]
    assert f.last("eval")["knn_top1"] == 0.5


def test_the_app_keeps_a_runs_maps_in_its_directory(runs_dir):
    """UMAPs go to ``<run>/maps/`` of a run that exists, nowhere for anything else (an id
    that is a path, a run that is gone)."""
    from app.state import _maps_folder
    from engine.config import RunConfig
    from engine.eval.maps import MapKey
    from engine.train.store import RunStore

    run = RunStore(runs_dir).create(RunConfig(), owner="tester")
    assert _maps_folder(MapKey(run.id, 3, "h")) == run.path / "maps"
    assert _maps_folder(MapKey("../" + run.id, 3, "h")) is None
    assert _maps_folder(MapKey("no-such-run", 3, "h")) is None
