"""Embeddings of a data set by a run's encoder, as plain files for any other tool.

    <out>/
        h.npy          float32 (N, D): the backbone feature of each image
        z.npy          float32 (N, d): the projection, where the method has one
        ids.npy        int64 (N,): each image's row in its split (the ids the maps show)
        labels.npy     int64 (N,): class codes, -1 = unlabelled
        paths.txt      one file path a line, for an image folder (when every file decoded)
        embeddings.parquet  the same as one table (id, label, class, path, h, z), where
                       pyarrow is installed (Streamlit brings it)
        embeddings.json  data set, split, class names, shapes, and why paths.txt is missing
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.config import DataConfig
from engine.encoder.evaluate import eval_config
from engine.encoder.load import TrainedEncoder
from engine.train.store import atomic_write_json

SPLITS = ("train", "test")


def export_embeddings(enc: TrainedEncoder, out: str | Path, data: dict[str, Any] | None = None,
                      split: str = "test") -> dict[str, Any]:
    """Embed ``split`` of the run's data set (with ``data`` overrides) and write the files of
    the module docstring; returns what ``embeddings.json`` says."""
    from engine.data import load_dataset

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (got {split!r})")
    cfg = eval_config(enc, data or {})
    ds = load_dataset(cfg.data)
    part = getattr(ds, split)
    features = enc.embed(part.images)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for key, value in features.items():
        np.save(out / f"{key}.npy", value.numpy().astype(np.float32))
    np.save(out / "ids.npy", np.arange(len(part), dtype=np.int64))
    np.save(out / "labels.npy", part.labels.numpy().astype(np.int64))
    paths, why = file_paths(cfg.data, split, len(part))
    if paths is not None:
        (out / "paths.txt").write_text("".join(f"{p}\n" for p in paths))
    parquet = write_parquet(out / "embeddings.parquet", features, part.labels.numpy(),
                            list(ds.class_names), paths)
    report = {"run": enc.run.id, "step": enc.step, "data": cfg.data.name, "split": split,
              "n": len(part), "class_names": list(ds.class_names),
              "files": [f"{k}.npy" for k in features] + ["ids.npy", "labels.npy"]
              + (["paths.txt"] if paths is not None else [])
              + (["embeddings.parquet"] if parquet else []),
              "shapes": {k: list(v.shape) for k, v in features.items()},
              "paths": "paths.txt" if paths is not None else why}
    atomic_write_json(out / "embeddings.json", report)
    return report


def file_paths(cfg: DataConfig, split: str, n: int) -> tuple[list[str] | None, str]:
    """The file of each image of ``split`` of an image folder, in the split's order, or None
    and why not. The folder loader keeps no paths: they are listed again the way it lists
    them, and kept only when every listed file was read (the counts agree)."""
    if cfg.name != "folder":
        return None, f"{cfg.name} is a built-in data set: its images have no files"
    from engine.data.folder import _labelled, _list_folder
    from engine.data.loading import subsample_index

    found = _list_folder(cfg)
    listing = found.train if split == "train" else found.test
    files, labels = _labelled(listing, {c: i for i, c in enumerate(found.class_names)})
    keep = subsample_index(np.asarray(labels), cfg.train_size if split == "train"
                           else cfg.test_size, cfg.seed, split)
    files = [str(found.root / files[i]) for i in keep]
    if len(files) != n:
        return None, (f"{len(files) - n} file(s) of the folder could not be read, so the "
                      "files cannot be matched to the images")
    return files, ""


def write_parquet(path: Path, features: dict[str, Any], labels: np.ndarray,
                  class_names: list[str], paths: list[str] | None) -> bool:
    """One row an image: ``id``, ``label``, ``class``, ``path`` (or null), ``h`` and ``z`` as
    lists of floats. False (nothing written) without pyarrow."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    n = len(labels)
    columns = {
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "label": pa.array(labels.astype(np.int64)),
        "class": pa.array([class_names[i] if 0 <= i < len(class_names) else None
                           for i in labels.tolist()], pa.string()),
        "path": pa.array(paths if paths is not None else [None] * n, pa.string()),
    }
    for key, value in features.items():
        matrix = value.numpy().astype(np.float32)
        columns[key] = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()),
                                                         matrix.shape[1])
    pq.write_table(pa.table(columns), path)
    return True
