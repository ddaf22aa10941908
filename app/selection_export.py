"""A selection on the Explore map, taken away: a CSV of the selected images (id, class,
attributes, file path where the images are files) and a zip of the images themselves (the
original files of an image folder, else PNGs of the pictures the map shows)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from app import images
from app.mapview import Snapshot, _name, test_paths


def rows_table(snap: Snapshot, rows: Sequence[int]) -> list[dict[str, object]]:
    """One dict a selected row: ``id`` (the image's row in the test split), ``class``, each
    attribute, and ``path`` when the images are files."""
    paths = test_paths(snap.run_id)
    table = []
    for r in rows:
        index = int(snap.arrays["index"][r])
        line: dict[str, object] = {"id": index, "class": _name(snap.class_names,
                                                               snap.labels[r])}
        for attr in snap.colourings()[1:]:
            line[attr] = _name(snap.attribute_names[attr], snap.arrays[f"attr_{attr}"][r])
        if paths is not None and index < len(paths):
            line["path"] = paths[index]
        table.append(line)
    return table


def csv_bytes(snap: Snapshot, rows: Sequence[int]) -> bytes:
    table = rows_table(snap, rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(table[0]) if table else ["id"])
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue().encode()


def zip_bytes(snap: Snapshot, rows: Sequence[int]) -> bytes:
    """The selected images: their files when they are files, else PNGs of the pictures."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for line, r in zip(rows_table(snap, rows), rows, strict=True):
            stem = f"{line['id']:06d}_{line['class']}".replace("/", "_")
            path = line.get("path")
            if path and Path(str(path)).is_file():
                zf.write(str(path), f"{stem}{Path(str(path)).suffix}")
            elif snap.thumbs is not None:
                png = io.BytesIO()
                Image.fromarray(images.to_hwc(np.asarray(snap.thumbs[r]))).save(png, "PNG")
                zf.writestr(f"{stem}.png", png.getvalue())
    return buf.getvalue()


def downloads(snap: Snapshot, rows: Sequence[int]) -> None:
    """Two buttons under a selection: its CSV, and a zip of its images."""
    cols = st.columns(2)
    name = f"{snap.run_id}_step{snap.step}_{len(rows)}"
    cols[0].download_button("Selection as CSV", data=lambda: csv_bytes(snap, rows),
                            file_name=f"{name}.csv", mime="text/csv", key="selection_csv",
                            on_click="ignore", icon=":material/table_view:", width="stretch",
                            help="Id, class and attributes of each selected image, and its "
                            "file where the images are files")
    cols[1].download_button("Images as zip", data=lambda: zip_bytes(snap, rows),
                            file_name=f"{name}.zip", mime="application/zip",
                            key="selection_zip", on_click="ignore", icon=":material/folder_zip:",
                            width="stretch",
                            disabled=snap.thumbs is None and test_paths(snap.run_id) is None,
                            help="The selected images (their files, or the map's pictures)")
