"""The background map cache: PCA at once, UMAP queued on one worker, cached per key."""

import threading
import time

import numpy as np
import pytest

from engine.eval.maps import MAX_LAYOUT_POINTS, MapCache, MapKey, layout_epochs


class FakeProjection:
    """Counts calls; UMAP blocks until released so tests can watch the queue."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.release = threading.Event()
        self.running = threading.Event()
        self.warmed = threading.Event()
        self.threads: set[str] = set()

    def project(self, kind, feats, params):
        self.calls.append((kind, feats.shape, params))
        self.threads.add(threading.current_thread().name)
        if kind == "umap":
            self.running.set()
            assert self.release.wait(5)
            if params.get("fail"):
                raise ValueError("umap exploded")
            return np.full((len(feats), 2), float(params.get("seed", 1)), np.float32)
        return np.zeros((len(feats), 2), np.float32)

    def warm(self):
        self.warmed.set()


@pytest.fixture
def fake():
    return FakeProjection()


@pytest.fixture
def cache(fake):
    return MapCache(project=fake.project, warm=fake.warm)


def feats(n=20, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_pca_is_synchronous_and_cached(cache, fake):
    key = MapKey("run-a", 0, "h")
    a = cache.pca(key, feats())
    b = cache.request(key, feats(), kind="pca")
    assert a.shape == (20, 2) and b is a
    assert [c[0] for c in fake.calls] == ["pca"]
    assert cache.status(key, "pca") == "ready"


def test_umap_runs_in_the_background_then_is_cached(cache, fake):
    key = MapKey("run-a", 3, "h")
    assert cache.request(key, feats()) is None
    assert fake.running.wait(2)
    assert cache.status(key) == "computing" and cache.busy()
    assert cache.request(key, feats()) is None  # asking again queues nothing
    fake.release.set()
    coords = cache.wait(key, timeout=5)
    assert coords is not None and coords.shape == (20, 2)
    assert cache.request(key, feats()) is coords
    assert sum(c[0] == "umap" for c in fake.calls) == 1
    assert fake.threads == {"map-worker"}
    assert cache.status(key) == "ready" and not cache.busy()


def test_keys_separate_runs_steps_features_and_params(cache, fake):
    fake.release.set()
    keys = [MapKey("a", 0, "h"), MapKey("a", 1, "h"), MapKey("a", 1, "z"), MapKey("b", 0, "h")]
    for k in keys:
        cache.request(k, feats())
    cache.request(keys[0], feats(), seed=7)
    for k in keys:
        assert cache.wait(k, timeout=5) is not None
    assert cache.wait(keys[0], timeout=5, seed=7)[0, 0] == 7.0
    assert sum(c[0] == "umap" for c in fake.calls) == 5


def test_the_newest_request_runs_first(cache, fake):
    first, older, newest = MapKey("a", 0), MapKey("a", 1), MapKey("a", 2)
    cache.request(first, feats())
    assert fake.running.wait(2)
    cache.request(older, feats(n=11))
    cache.request(newest, feats(n=12))
    assert cache.status(older) == "queued"
    fake.release.set()
    assert cache.wait(older, timeout=5) is not None
    sizes = [c[1][0] for c in fake.calls if c[0] == "umap"]
    assert sizes == [20, 12, 11]


def test_the_queue_keeps_only_the_newest_requests(fake):
    cache = MapCache(max_pending=2, project=fake.project, warm=fake.warm)
    cache.request(MapKey("a", 0), feats())
    assert fake.running.wait(2)
    for step in (1, 2, 3):
        cache.request(MapKey("a", step), feats())
    assert cache.status(MapKey("a", 1)) == "missing"  # dropped: the oldest waiting
    assert [cache.status(MapKey("a", s)) for s in (2, 3)] == ["queued", "queued"]
    cache.request(MapKey("a", 1), feats())  # asked again: queued again, newest
    assert cache.status(MapKey("a", 1)) == "queued" and cache.status(MapKey("a", 2)) == "missing"
    fake.release.set()
    assert cache.wait(MapKey("a", 1), timeout=5) is not None


def test_a_failure_is_reported_and_not_retried(cache, fake):
    fake.release.set()
    key = MapKey("a", 0)
    cache.request(key, feats(), fail=True)
    assert cache.wait(key, timeout=5, fail=True) is None
    assert cache.status(key, fail=True) == "failed"
    assert "exploded" in cache.error(key, fail=True)
    assert cache.request(key, feats(), fail=True) is None
    assert sum(c[0] == "umap" for c in fake.calls) == 1


def test_features_are_copied_so_callers_may_reuse_buffers(cache, fake):
    x = feats()
    cache.request(MapKey("a", 0), x)
    x[:] = np.nan
    fake.release.set()
    cache.wait(MapKey("a", 0), timeout=5)
    assert fake.calls[0][0] == "umap"


def test_lru_bound_and_clear(fake):
    cache = MapCache(max_entries=2, project=fake.project, warm=fake.warm)
    for step in range(3):
        cache.pca(MapKey("a", step), feats())
    assert len(cache) == 2 and cache.status(MapKey("a", 0), "pca") == "missing"
    cache.pca(MapKey("b", 0), feats())
    cache.clear("a")
    assert len(cache) == 1 and cache.status(MapKey("b", 0), "pca") == "ready"


def test_warm_up_runs_once_in_the_background(cache, fake):
    cache.warm_up()
    cache.warm_up()
    assert fake.warmed.wait(2)
    deadline = time.time() + 2
    while not cache.warmed and time.time() < deadline:
        time.sleep(0.01)
    assert cache.warmed


def test_unknown_kind_is_a_readable_error(cache):
    with pytest.raises(ValueError, match="unknown map kind"):
        cache.request(MapKey("a", 0), feats(), kind="tsne")


def test_concurrent_requests_compute_each_map_once(cache, fake):
    fake.release.set()
    key = MapKey("a", 0)
    threads = [threading.Thread(target=cache.request, args=(key, feats())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.wait(key, timeout=5) is not None
    assert sum(c[0] == "umap" for c in fake.calls) == 1


def test_real_projections_when_available():
    projection = pytest.importorskip("engine.eval.projection")
    cache = MapCache()
    x = np.concatenate([feats(40, 16, 0), feats(40, 16, 1) + 5])
    pca = cache.pca(MapKey("a", 0), x)
    assert pca.shape == (80, 2) and np.isfinite(pca).all()
    assert hasattr(projection, "umap_2d")
    cache.request(MapKey("a", 0), x, n_neighbors=10, min_dist=0.1, seed=0)
    umap = cache.wait(MapKey("a", 0), timeout=120, n_neighbors=10, min_dist=0.1, seed=0)
    assert umap is not None and umap.shape == (80, 2)


def test_a_umap_starts_from_the_same_points_map_at_the_nearest_other_step(cache, fake):
    fake.release.set()
    first = cache.request(MapKey("a", 0), feats()) or cache.wait(MapKey("a", 0), timeout=5)
    cache.request(MapKey("a", 5), feats()) or cache.wait(MapKey("a", 5), timeout=5)
    cold, warm = (c[2] for c in fake.calls)
    assert cold["n_epochs"] == layout_epochs(20) == 500 and "init" not in cold
    assert warm["n_epochs"] == layout_epochs(20, warm=True) == 250 and warm["init"] is first
    assert warm["max_points"] == cold["max_points"] == MAX_LAYOUT_POINTS
    # not from other points, another run or feature, other settings; the caller's win
    for key, x, params in ((MapKey("a", 6), feats(n=21), {}), (MapKey("b", 6), feats(), {}),
                           (MapKey("a", 6, "z"), feats(), {}),
                           (MapKey("a", 7), feats(), {"seed": 3, "n_epochs": 9})):
        cache.request(key, x, **params)
        assert cache.wait(key, timeout=5, **params) is not None
        assert "init" not in fake.calls[-1][2]
    assert fake.calls[-1][2]["n_epochs"] == 9
    cache.request(MapKey("a", 3), feats())  # two candidates: step 5 is nearer than step 0
    later = cache.wait(MapKey("a", 5), timeout=5)
    assert cache.wait(MapKey("a", 3), timeout=5) is not None
    assert fake.calls[-1][2]["init"] is later


def test_layout_epochs_keep_a_budget_of_point_epochs():
    assert [layout_epochs(n) for n in (1000, 4000, 5000, 10_000, 20_000, 50_000)] == [
        500, 300, 240, 120, 100, 100]  # 50,000: a subset of MAX_LAYOUT_POINTS is laid out
    assert layout_epochs(10_000, warm=True) == 60


def test_a_umap_is_kept_on_disk_and_read_back_by_the_next_process(fake, tmp_path):
    """A restarted app shows the map it showed before, without computing it again; other
    features (a snapshot written again after a resume) or other parameters are computed anew."""
    folder = tmp_path / "run-a" / "maps"
    first = MapCache(project=fake.project, warm=fake.warm, folder=lambda key: folder)
    key, f = MapKey("run-a", 5, "h"), feats()
    fake.release.set()
    assert first.request(key, f, seed=3) is None
    shown = first.wait(key, seed=3)
    assert len(list(folder.glob("umap_step_0000005_h_*.npy"))) == 1

    later = MapCache(project=fake.project, warm=fake.warm, folder=lambda key: folder)
    again = later.request(key, f, seed=3)  # at once, from the file
    assert again is not None and np.array_equal(again, shown)
    assert sum(c[0] == "umap" for c in fake.calls) == 1
    assert later.status(key, seed=3) == "ready"

    assert later.request(key, f, seed=4) is None  # other parameters: computed
    later.wait(key, seed=4)
    resumed = MapCache(project=fake.project, warm=fake.warm, folder=lambda key: folder)
    assert resumed.request(key, feats(seed=1), seed=3) is None  # other features: computed
    resumed.wait(key, seed=3)
    assert sum(c[0] == "umap" for c in fake.calls) == 3
    assert len(list(folder.glob("umap_step_0000005_h_*.npy"))) == 3


def test_a_map_folder_that_cannot_be_written_only_costs_the_recomputation(fake, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    cache = MapCache(project=fake.project, warm=fake.warm, folder=lambda key: blocked / "maps")
    key = MapKey("run-a", 1, "h")
    fake.release.set()
    assert cache.request(key, feats()) is None
    assert cache.wait(key) is not None  # computed and shown, though not kept
    assert cache.error(key) is None and cache.request(key, feats()) is not None
    (bad := tmp_path / "maps").mkdir()
    cache = MapCache(project=fake.project, warm=fake.warm, folder=lambda key: bad)
    cache.request(key, feats())
    cache.wait(key)
    for f in bad.glob("*.npy"):  # a damaged file is computed again, not shown
        f.write_bytes(b"garbage")
    cache = MapCache(project=fake.project, warm=fake.warm, folder=lambda key: bad)
    assert cache.request(key, feats()) is None
    assert cache.wait(key) is not None
