"""What Explore and Compare share: a run's snapshot with its images and colourings, its 2-D map
(PCA at once, UMAP from the background cache), and neighbour galleries (faiss in the full
embedding space, from ``engine.eval.retrieval``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st

from app import charts, images
from app.state import apply_later, dataset, map_cache, registry, run_dir
from engine.eval.maps import MapKey
from engine.eval.retrieval import NeighbourIndex, precision_at_k
from engine.share.thumbnails import carried_pictures
from engine.train.store import RunDir

UMAP_PARAMS = {"n_neighbors": 15, "min_dist": 0.1, "seed": 0}
MAP_KINDS = {"umap": "UMAP", "pca": "PCA"}


@dataclass
class Snapshot:
    """One embedding snapshot of a run, with what it takes to draw it."""

    run_id: str
    step: int
    arrays: dict[str, np.ndarray]
    class_names: list[str]
    attribute_names: dict[str, list[str]] = field(default_factory=dict)
    thumbs: Any = None  # uint8 (N, C, H, W) test images of the snapshot rows, or None
    data_error: str = ""

    @property
    def n(self) -> int:
        return len(self.arrays["h"])

    @property
    def features(self) -> list[str]:
        return [k for k in ("h", "z") if k in self.arrays]

    @property
    def labels(self) -> np.ndarray:
        return self.arrays["labels"]

    def colourings(self) -> list[str]:
        return ["class", *[a for a in self.attribute_names if f"attr_{a}" in self.arrays]]

    def codes(self, colouring: str) -> tuple[np.ndarray, list[str]]:
        """Per-row integer codes and the names they stand for."""
        if colouring == "class":
            return self.labels, self.class_names
        return self.arrays[f"attr_{colouring}"], self.attribute_names[colouring]

    @functools.cached_property
    def descriptions(self) -> list[str]:
        """:meth:`describe_row` of every row (the map's hover texts), made once per snapshot:
        a 50,000-point map would otherwise spend a tenth of a second on them at every click."""
        return [self.describe_row(i) for i in range(self.n)]

    def describe_row(self, row: int, colouring: str = "class") -> str:
        parts = [f"#{int(self.arrays['index'][row])}", _name(self.class_names, self.labels[row])]
        for a in self.attribute_names:
            if f"attr_{a}" in self.arrays:
                parts.append(_name(self.attribute_names[a], self.arrays[f"attr_{a}"][row]))
        return " · ".join(parts)


def _name(names: Sequence[str], code: Any) -> str:
    code = int(code)
    if code < 0:
        return "unlabelled"
    return names[code] if code < len(names) else str(code)


@st.cache_resource(max_entries=16, show_spinner=False)
def _load(run_id: str, step: int) -> Snapshot:
    run = registry().run(run_id)
    arrays = run.load_snapshot(step)
    cfg = run.config()
    class_names: list[str] = []
    attributes: dict[str, list[str]] = {}
    thumbs, error = None, ""
    carried = carried_pictures(run, arrays)
    if carried is not None:  # a tracked or imported run brings its own pictures and words
        thumbs, class_names, attributes = carried
        return Snapshot(run_id, step, arrays, class_names, attributes, thumbs, "")
    try:
        ds = dataset(cfg.data)
        class_names, attributes = list(ds.class_names), dict(ds.attribute_names)
        if not same_data(run, ds.key):
            raise ValueError(f"{cfg.data.root or cfg.data.name} has changed since this run "
                             "trained: its pictures would not be the images of the map")
        thumbs = ds.test.images[arrays["index"]]
    except Exception as exc:  # noqa: BLE001 — the map still works without pictures
        error = str(exc)
        n_classes = int(arrays["labels"].max()) + 1 if len(arrays["labels"]) else 0
        class_names = [str(i) for i in range(n_classes)]
        for key, values in arrays.items():
            if key.startswith("attr_"):
                attributes[key[5:]] = [str(i) for i in range(int(values.max()) + 1)]
    return Snapshot(run_id, step, arrays, class_names, attributes, thumbs, error)


def same_data(run: RunDir, key: str) -> bool:
    """Whether the data set loaded under ``key`` (``Dataset.key``, ``data_key``) is what
    ``run`` trained on, as far as its ``start`` event says: an image folder with files added,
    edited or removed since is not; a run that recorded nothing is taken at its word."""
    starts = run.metrics("start")
    recorded = starts[-1].get("dataset", {}).get("key", "") if starts else ""
    return not recorded or not key or recorded == key


def load(run_id: str, step: int) -> Snapshot:
    """The snapshot of ``run_id`` at ``step`` (cached per process)."""
    return _load(run_id, int(step))


def coords(snap: Snapshot, feature: str, kind: str) -> tuple[np.ndarray, str]:
    """The 2-D map to draw now and what it is (``umap`` or ``pca``): PCA stands in while the
    UMAP is computed in the background."""
    key = MapKey(snap.run_id, snap.step, feature)
    feats = snap.arrays[feature]
    if kind == "umap":
        done = map_cache().request(key, feats, **UMAP_PARAMS)
        if done is not None:
            return done, "umap"
    return map_cache().pca(key, feats), "pca"


@st.cache_resource(max_entries=8, show_spinner=False)
def _figure(run_id: str, step: int, feature: str, shown: str, colouring: str, height: int,
            _snap: Snapshot, _xy: np.ndarray) -> Any:
    codes, names = _snap.codes(colouring)
    return charts.embedding_map(_xy, codes, names, _snap.descriptions, height=height,
                                meta=map_id(_snap, feature, shown))


def map_figure(snap: Snapshot, feature: str, xy: np.ndarray, shown: str, colouring: str,
               height: int) -> Any:
    """Explore's map figure, built once per snapshot, feature, map and colouring: building a
    Plotly figure of 50,000 points takes about a second, and a click redraws the map's
    fragment. Its ``layout.meta`` is :func:`map_id`."""
    return _figure(snap.run_id, snap.step, feature, shown, colouring, height, snap, xy)


def map_id(snap: Snapshot, feature: str, shown: str) -> str:
    """The name of Explore's map of ``snap`` (its chart key and its figure's ``layout.meta``)."""
    return f"explore_map_{snap.run_id}_{snap.step}_{feature}_{shown}"


def umap_pending(snaps: Sequence[tuple[Snapshot, str]]) -> bool:
    return any(map_cache().status(MapKey(s.run_id, s.step, f), **UMAP_PARAMS)
               in ("queued", "computing") for s, f in snaps)


def umap_error(snap: Snapshot, feature: str) -> str | None:
    return map_cache().error(MapKey(snap.run_id, snap.step, feature), **UMAP_PARAMS)


def wait_for_umap(snaps: Sequence[tuple[Snapshot, str]]) -> None:
    """A small poller that redraws the page once the requested UMAPs are ready. The map itself
    lives in a fragment that never refreshes on a timer (that would clear the selection)."""
    for snap, feature in snaps:
        coords(snap, feature, "umap")  # queue what is missing, so "pending" means something
    if not umap_pending(snaps):
        return

    def poll() -> None:
        if not umap_pending(snaps):
            st.rerun(scope="app")
        st.caption(":material/hourglass_top: Computing the UMAP map in the background; "
                   "PCA is shown meanwhile.")

    st.fragment(poll, run_every=1.0)()


@st.cache_resource(max_entries=16, show_spinner=False)
def _index(run_id: str, step: int, feature: str) -> NeighbourIndex:
    return NeighbourIndex(load(run_id, step).arrays[feature])


def neighbours(snap: Snapshot, feature: str, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities and rows of the ``k`` nearest neighbours of ``row`` (itself left
    out), searched in the full embedding space."""
    sims, idx = _index(snap.run_id, snap.step, feature).neighbours_of([row], k)
    return sims[0], idx[0]


def precision(snap: Snapshot, idx: np.ndarray, row: int, colouring: str) -> float | None:
    """Precision@k of one query: the fraction of its neighbours that share its label."""
    codes, _ = snap.codes(colouring)
    if codes[row] < 0:
        return None
    return float(precision_at_k(codes[idx][None, :], codes[[row]])[0])


@st.cache_resource(max_entries=16, show_spinner=False)
def test_paths(run_id: str) -> list[str] | None:
    """The file of each test image of the run's data set (an image folder on this machine),
    or None (built-in data, a folder that is not here, files that could not be matched).
    One list a process, read by every gallery (not copied at each read, as ``st.cache_data``
    would): do not change it."""
    from engine.data.loading import data_key
    from engine.encoder.embeddings import file_paths

    run = run_dir(run_id)
    try:
        cfg = run.config().data if run is not None else None
        if cfg is None or cfg.name != "folder" or not same_data(run, data_key(cfg)):
            return None  # the folder as it is now, not as this process loaded it
        return file_paths(cfg, "test", len(dataset(cfg).test))[0]
    except Exception:  # noqa: BLE001 — no paths is an answer: the CSV says so by leaving them out
        return None


def pictures(snap: Snapshot, rows: Sequence[int], size: int) -> list[np.ndarray] | None:
    """(H, W, 3) pictures of snapshot rows about ``size`` px across: the original files of an
    image folder on this machine (a photo, not the small copy it trained on), else the snapshot's
    own images enlarged; None when there are neither."""
    paths = test_paths(snap.run_id)
    if paths is not None:
        try:
            return [images.file_thumb(paths[int(snap.arrays["index"][r])], size) for r in rows]
        except Exception:  # noqa: BLE001 — a file unreadable or gone since: the snapshot's own
            pass
    if snap.thumbs is None:
        return None
    return images.thumbs(snap.thumbs[list(rows)], size)


def gallery(snap: Snapshot, rows: Sequence[int], captions: Sequence[str], size: int = 96,
            per_row: int | None = None) -> None:
    """Pictures of snapshot rows (:func:`pictures`) with captions, ``per_row`` to a row (or
    just the captions when there are no pictures)."""
    pics = pictures(snap, rows, size)
    if pics is None:
        st.caption(" · ".join(captions))
        return
    if per_row is None:
        st.image(pics, caption=list(captions), width=size)
        return
    for start in range(0, len(pics), per_row):
        cols = st.columns(per_row, gap="small")
        for col, pic, cap in zip(cols, pics[start : start + per_row],
                                 captions[start : start + per_row], strict=False):
            col.image(pic, caption=cap, width="stretch")


def pick_step(snap_steps: list[int], key: str, label: str = "Snapshot (training step)",
              default: int | None = None) -> int:
    """A slider over a run's snapshot steps; ``default`` (one of them) or the newest first.
    Its value lives in ``st.session_state[key]`` alone, so :func:`app.state.set_later` (as
    "Show the newest map" does) moves the slider."""
    apply_later(key)
    if st.session_state.get(key) not in snap_steps:
        st.session_state[key] = default if default in snap_steps else snap_steps[-1]
    if len(snap_steps) == 1:
        st.caption(f"{label}: {snap_steps[0]}")
        return snap_steps[0]
    return int(st.select_slider(label, snap_steps, key=key))
