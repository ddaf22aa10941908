"""A thread-safe cache of 2-D maps of embedding snapshots, computed in the background.

The UI wants a map at once and a good map soon: PCA is a few milliseconds, so :meth:`MapCache.pca`
answers synchronously; UMAP takes seconds (and its first call pays numba's compilation), so
:meth:`MapCache.request` queues it on one worker thread and answers ``None`` until it is done.
Results are kept per key, where a key names a run, a snapshot step and the feature mapped
(``MapKey(run_id, step, "h")``), and per kind (``"pca"`` / ``"umap"``) and projection parameters.
A computed map of a finished snapshot never changes, so nothing is ever recomputed.

One worker is deliberate: UMAP uses every core through numba, and it shares the machine with a
training thread; two UMAPs at once would each take twice as long. The newest request runs first
(a user flipping through snapshots wants the one on the screen, not the one they left).

Big maps (the 10,000 CIFAR-10 test images, a 50,000-image bank) are made affordable three ways,
each measured in BENCHMARKS.md ("Maps and retrieval at the scale of real data sets"):
the layout gets a fixed budget of point-epochs (:func:`layout_epochs`: umap-learn's 500 epochs
up to 2,400 points, fewer above); a UMAP of ``MapKey(run, step, f)`` starts from the cached UMAP
of the same run, feature and points at the nearest other step (the previous snapshot while a
run trains): no spectral initialisation, half the epochs, and the map keeps its shape from one
snapshot to the next; above ``MAX_LAYOUT_POINTS`` points UMAP lays out a random subset and
places the others by their neighbours (:func:`engine.eval.projection.place_by_neighbours`).
A warm-started map depends on which maps were computed before it; each is a UMAP of its own
snapshot.

With ``folder`` (the app: the run's ``maps/`` directory), every UMAP is also written to disk,
named by a digest of its features and parameters, and read back instead of computed again: a
restarted app shows the map it showed before, at once (BENCHMARKS.md, "UMAP maps on disk").
A folder that cannot be written (a read-only share, a full disk) only costs the recomputation.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from engine.train.store import atomic_write_bytes

log = logging.getLogger(__name__)

KINDS = ("pca", "umap")
#: points x layout epochs of a UMAP from scratch: 120 epochs at 10,000 points (about 2.5 s on
#: one core; 200 kept 0.152 of the 10 nearest neighbours, 120 keep 0.148: BENCHMARKS.md)
LAYOUT_BUDGET = 1_200_000
#: above this many points UMAP lays out a random subset of this size and places the rest
MAX_LAYOUT_POINTS = 20_000


def layout_epochs(n: int, warm: bool = False) -> int:
    """UMAP layout epochs for a map of ``n`` points: ``LAYOUT_BUDGET / n`` between 100 and
    umap-learn's own 500, halved for a warm start (it needs no spectral initialisation and
    starts from a layout of the same points)."""
    laid_out = min(max(n, 1), MAX_LAYOUT_POINTS)
    epochs = min(500, max(100, LAYOUT_BUDGET // laid_out))
    return epochs // 2 if warm else epochs


class MapKey(NamedTuple):
    """What a map is of: one run's snapshot at ``step``, feature ``h`` or ``z``."""

    run_id: str
    step: int
    feature: str = "h"


def _project(kind: str, feats: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    from engine.eval import projection

    if kind == "pca":
        return np.asarray(projection.pca_2d(feats), dtype=np.float32)
    if kind == "umap":
        return np.asarray(projection.umap_2d(feats, **params), dtype=np.float32)
    raise ValueError(f"unknown map kind {kind!r}; known: {', '.join(KINDS)}")


def _warm_up() -> None:
    from engine.eval import projection

    projection.warm_up_umap(background=False)


class MapCache:
    """2-D maps by (key, kind, parameters); UMAP in one background worker, PCA inline.

    ``project`` and ``warm`` replace the projection functions (tests use fakes).
    ``max_entries`` bounds the memory: the least recently used maps are dropped first.
    ``max_pending`` bounds the queue (each request holds a copy of its features): past it the
    oldest request is dropped, a page nobody looks at any more; asking again queues it again.
    ``folder(key)``: the directory where the UMAPs of ``key`` are kept on disk, or None.
    """

    def __init__(
        self,
        max_entries: int = 256,
        max_pending: int = 8,
        project: Callable[[str, np.ndarray, dict[str, Any]], np.ndarray] | None = None,
        warm: Callable[[], None] | None = None,
        folder: Callable[[Hashable], Path | None] | None = None,
    ) -> None:
        self.max_entries = max_entries
        self._folder = folder
        self.max_pending = max_pending
        self._project = project or _project
        self._warm = warm or _warm_up
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._done: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._errors: dict[Hashable, str] = {}
        self._queue: OrderedDict[Hashable, tuple[str, np.ndarray, dict[str, Any]]] = OrderedDict()
        self._running: Hashable | None = None
        self._warming = False
        self._warmed = False
        self._worker: threading.Thread | None = None

    # -- public ---------------------------------------------------------------------------------
    def pca(self, key: Hashable, feats: Any) -> np.ndarray:
        """The PCA map of ``feats`` (N, D) as float32 (N, 2), computed now and cached."""
        slot = (key, "pca", ())
        with self._lock:
            if slot in self._done:
                self._done.move_to_end(slot)
                return self._done[slot]
        coords = self._project("pca", np.asarray(feats), {})
        with self._lock:
            self._store(slot, coords)
        return coords

    def request(
        self, key: Hashable, feats: Any, kind: str = "umap", **params: Any
    ) -> np.ndarray | None:
        """The map of ``feats`` (N, D) if it is ready, else ``None`` after queueing its
        computation (once; asking again while it computes costs nothing).

        ``kind="pca"`` answers synchronously. ``params`` go to the projection
        (``n_neighbors``, ``min_dist``, ``seed`` for UMAP) and are part of the cache key.
        A failed computation is not retried; :meth:`error` says why.
        """
        if kind == "pca":
            return self.pca(key, feats)
        if kind not in KINDS:
            raise ValueError(f"unknown map kind {kind!r}; known: {', '.join(KINDS)}")
        slot = (key, kind, tuple(sorted(params.items())))
        with self._lock:
            if slot in self._done:
                self._done.move_to_end(slot)
                return self._done[slot]
            if slot in self._errors or slot == self._running:
                return None
            if slot in self._queue:
                self._queue.move_to_end(slot)  # newest first
                return None
        feats = np.array(feats, dtype=np.float32, copy=True)
        saved = self._read(slot, feats)  # kept on disk by an earlier process
        with self._lock:
            if saved is not None:
                self._store(slot, saved)
                return saved
            if slot == self._running or slot in self._done:
                return self._done.get(slot)
            self._queue[slot] = (kind, feats, dict(params))
            self._queue.move_to_end(slot)  # newest first
            while len(self._queue) > self.max_pending:
                self._queue.popitem(last=False)
            self._ensure_worker()
            self._wake.notify_all()
        return None

    def status(self, key: Hashable, kind: str = "umap", **params: Any) -> str:
        """``ready`` | ``computing`` | ``queued`` | ``failed`` | ``missing``."""
        slot = (key, kind, tuple(sorted(params.items())) if kind != "pca" else ())
        with self._lock:
            if slot in self._done:
                return "ready"
            if slot in self._errors:
                return "failed"
            if slot == self._running:
                return "computing"
            if slot in self._queue:
                return "queued"
        return "missing"

    def error(self, key: Hashable, kind: str = "umap", **params: Any) -> str | None:
        """Why the map of ``key`` failed, or ``None``."""
        with self._lock:
            return self._errors.get((key, kind, tuple(sorted(params.items()))))

    def wait(
        self, key: Hashable, kind: str = "umap", timeout: float = 30.0, **params: Any
    ) -> np.ndarray | None:
        """Block until the requested map is ready (its coordinates), failed or the timeout
        passes (``None`` for both)."""
        slot = (key, kind, tuple(sorted(params.items())))
        with self._wake:
            self._wake.wait_for(
                lambda: slot in self._done or slot in self._errors
                or (slot not in self._queue and slot != self._running),
                timeout,
            )
            return self._done.get(slot)

    def warm_up(self) -> None:
        """Compile UMAP's numba kernels in the background (once per process), so the first
        real map does not pay for it. Map requests made meanwhile queue behind it."""
        with self._lock:
            if self._warmed or self._warming:
                return
            self._warming = True
            self._ensure_worker()
            self._wake.notify_all()

    @property
    def warmed(self) -> bool:
        with self._lock:
            return self._warmed

    def busy(self) -> bool:
        """True while a map is computing or queued (the UI polls only then)."""
        with self._lock:
            return bool(self._queue) or self._running is not None or self._warming

    def clear(self, run_id: str | None = None) -> None:
        """Forget the maps of one run (keys whose ``run_id`` matches), or all maps."""
        with self._lock:
            for store in (self._done, self._errors):
                for slot in [s for s in store if run_id is None or _run_of(s[0]) == run_id]:
                    del store[slot]

    def __len__(self) -> int:
        with self._lock:
            return len(self._done)

    # -- the worker -------------------------------------------------------------------------
    def _store(self, slot: Hashable, coords: np.ndarray) -> None:
        self._done[slot] = coords
        self._done.move_to_end(slot)
        while len(self._done) > self.max_entries:
            self._done.popitem(last=False)

    def _plan(self, slot: tuple, n: int, params: dict[str, Any]) -> dict[str, Any]:
        """The UMAP settings of ``slot`` (N points): the caller's ``params`` over the cache's
        epochs and subset size, and ``init`` (a warm start) when a map of the same points at
        another step is cached."""
        key, _, settings = slot
        plan: dict[str, Any] = {"n_epochs": layout_epochs(n), "max_points": MAX_LAYOUT_POINTS}
        if isinstance(key, MapKey):
            with self._lock:
                near = [(abs(k.step - key.step), coords) for (k, kind, p), coords
                        in self._done.items()
                        if kind == "umap" and p == settings and isinstance(k, MapKey)
                        and k.run_id == key.run_id and k.feature == key.feature
                        and k.step != key.step and len(coords) == n]
            if near:
                plan = {**plan, "n_epochs": layout_epochs(n, warm=True),
                        "init": min(near, key=lambda t: t[0])[1]}
        return {**plan, **params}

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._loop, name="map-worker", daemon=True)
            self._worker.start()

    def _loop(self) -> None:
        while True:
            with self._wake:
                if not self._wake.wait_for(lambda: self._queue or self._warming, timeout=30.0):
                    self._worker = None  # idle: let the thread end; the next request restarts it
                    return
                warming = self._warming and not self._warmed
                if not warming:
                    slot, (kind, feats, params) = self._queue.popitem(last=True)
                    self._running = slot
            if warming:
                try:
                    self._warm()
                except Exception:  # noqa: BLE001 — a failed warm-up only costs time later
                    pass
                with self._wake:
                    self._warming, self._warmed = False, True
                    self._wake.notify_all()
                continue
            if kind == "umap":
                params = self._plan(slot, len(feats), params)
            try:
                coords, error = self._project(kind, feats, params), None
            except Exception as exc:  # noqa: BLE001 — reported through error()
                coords, error = None, str(exc) or type(exc).__name__
            if error is None:
                self._write(slot, feats, coords)
            with self._wake:
                if error is None:
                    self._store(slot, coords)
                else:
                    self._errors[slot] = error
                self._running = None
                self._wake.notify_all()

    # -- on disk ------------------------------------------------------------------------------
    def _file(self, slot: tuple, feats: np.ndarray) -> Path | None:
        """Where the map of ``slot`` over ``feats`` is kept: a file per snapshot step and
        feature, named by a digest of the features and the parameters (a snapshot written
        again after a resume, or other parameters, name another file)."""
        key, kind, settings = slot
        folder = self._folder(key) if self._folder is not None else None
        if folder is None or not isinstance(key, MapKey):
            return None
        digest = hashlib.blake2b(repr(settings).encode(), digest_size=8)
        digest.update(np.ascontiguousarray(feats).data)
        return Path(folder) / f"{kind}_step_{key.step:07d}_{key.feature}_{digest.hexdigest()}.npy"

    def _read(self, slot: tuple, feats: np.ndarray) -> np.ndarray | None:
        path = self._file(slot, feats)
        if path is None or not path.is_file():
            return None
        try:
            coords = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("map %s unreadable, computed again: %s", path, exc)
            return None
        return coords if coords.shape == (len(feats), 2) else None

    def _write(self, slot: tuple, feats: np.ndarray, coords: np.ndarray) -> None:
        path = self._file(slot, feats)
        if path is None:
            return
        buf = io.BytesIO()
        np.save(buf, np.asarray(coords, dtype=np.float32))
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError as exc:  # read-only or full: the map is still shown, only not kept
            log.warning("map not kept on disk: %s", exc)


def _run_of(key: Hashable) -> Any:
    if isinstance(key, tuple) and key:
        return key[0]
    return key
