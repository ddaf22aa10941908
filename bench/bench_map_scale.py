"""Maps and retrieval at the scale of real data sets: UMAP of the 10,000 CIFAR-10 test images
and of a 50,000-image bank, and nearest neighbours in that bank, in the engine.

``prepare`` makes the two runs the measurements (and ``bench_map_browser.py``) use, in
``--runs-dir``: a SimCLR run on CIFAR-10 (``../shared/data/cifar10-jpg.tar.gz`` through the
folder loader, small CNN) whose snapshots hold all 10,000 test images (``eval.snapshot_size``),
and a tracked run (``engine.track``, the path a user's own loop takes) holding that encoder's
``h`` of the 50,000 train images with their thumbnails, untrained (step 0) and trained.

``measure`` times, per size (5,000 and 10,000 test points, 50,000 bank points), each as the
Explore page gets it in a warm process (numba compiled):

- ``before``: ``umap_2d(h, 15, 0.1, seed=0)``, the call the map cache made until now
  (umap-learn's 500 layout epochs up to 10,000 points, 200 above; the exact kNN graph of all
  points);
- ``cold``: ``MapCache`` now, the first map of the trained snapshot (``layout_epochs``, a
  subset above ``MAX_LAYOUT_POINTS``);
- ``warm``: ``MapCache`` now, the trained snapshot's map after the untrained one's (a warm
  start from it, half the epochs);
- ``subset_M``: ``umap_2d(..., max_points=M)``, M points laid out, the others placed;

each with its kNN preservation (k 10, ``engine.eval.map_quality``: the share of each point's
10 nearest neighbours in ``h`` that are among its 10 nearest on the map), its agreement with
the ``before`` map, and how far it moved from the untrained snapshot's map (``map_shift``);
then one query's neighbours in the 50,000 bank (faiss) against numpy.
One JSON line per measurement.

    .venv/bin/python bench/bench_map_scale.py prepare --runs-dir runs_bench/maps
    flock /tmp/cpu-bench.lock .venv/bin/python bench/bench_map_scale.py measure \\
        --runs-dir runs_bench/maps
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.eval.map_quality import knn_preservation, map_agreement, map_shift  # noqa: E402
from engine.eval.maps import MapCache, MapKey, layout_epochs  # noqa: E402
from engine.eval.projection import umap_2d, warm_up_umap  # noqa: E402
from engine.eval.retrieval import NeighbourIndex, brute_force_search  # noqa: E402
from engine.train.store import RunStore  # noqa: E402

CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
BANK_RUN = "CIFAR-10 train bank"
UMAP_PARAMS = {"n_neighbors": 15, "min_dist": 0.1, "seed": 0}  # app/mapview.py


def emit(**row: object) -> None:
    print(json.dumps(row), flush=True)


# -- prepare ----------------------------------------------------------------------------------
def cifar_run(store: RunStore) -> str | None:
    """The newest CIFAR-10 run whose snapshots hold 10,000 points."""
    for run in store.list():
        cfg = run.config()
        if cfg.data.name == "folder" and run.snapshots() and cfg.eval.snapshot_size >= 10_000:
            return run.id
    return None


def train_cifar(runs_dir: Path, seconds: int) -> str:
    """A SimCLR run on CIFAR-10 from the command line, a map of all 10,000 test images at
    step 0 and at its end."""
    cmd = [sys.executable, "-m", "engine", "train", "--runs-dir", str(runs_dir),
           "--set", "data.name=folder", "--set", f"data.root={CIFAR}",
           "--set", "augment.preset=simclr_cifar", "--set", f"train.max_seconds={seconds}",
           "--set", "eval.knn_test_size=10000", "--set", "eval.snapshot_size=10000",
           "--set", "eval.knn_train_size=5000", "--set", f"eval.every_seconds={seconds}",
           "--set", "eval.linear_probe=false"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    run_id = cifar_run(RunStore(runs_dir))
    assert run_id is not None
    return run_id


def track_bank(store: RunStore, run_id: str) -> str:
    """A tracked run: ``h`` of the 50,000 CIFAR-10 train images by ``run_id``'s encoder,
    untrained (step 0) and trained (its checkpoint's step), with labels and thumbnails."""
    import torch

    from engine import track
    from engine.data import load_dataset
    from engine.encoder.load import load_encoder, rebuild_method

    enc = load_encoder(store, run_id)
    ds = load_dataset(enc.cfg.data)
    images, labels = ds.train.images, ds.train.labels.numpy()
    torch.manual_seed(enc.cfg.seed)
    untrained = rebuild_method(enc.cfg, ds.channels, ds.image_size, ds.num_classes, None).eval()
    with track.start(BANK_RUN, runs_dir=store.root, method="simclr", data="cifar10 train",
                     backbone=enc.cfg.model.backbone, class_names=list(ds.class_names)) as run:
        for step, method in ((0, untrained), (enc.step, enc.method)):
            enc.method = method
            h = enc.embed(images)["h"].numpy()
            run.embeddings(step, h=h, labels=labels, images=images.numpy())
        run.flush()
    return run.id


def prepare(runs_dir: Path, seconds: int) -> None:
    if not CIFAR.exists():
        sys.exit(f"needs {CIFAR} (CIFAR-10 as JPEGs)")
    store = RunStore(runs_dir)
    run_id = cifar_run(store) or train_cifar(runs_dir, seconds)
    emit(bench="prepare", cifar_run=run_id, snapshots=store.get(run_id).snapshots())
    bank = next((r.id for r in store.list() if r.config().name == BANK_RUN), None)
    emit(bench="prepare", bank_run=bank or track_bank(store, run_id))


# -- measure ----------------------------------------------------------------------------------
def snapshots(store: RunStore, run_id: str, n: int | None = None) -> tuple[np.ndarray, ...]:
    """``h`` of the run's first and last snapshots, the first ``n`` rows."""
    run = store.get(run_id)
    first, last = run.snapshots()[0], run.snapshots()[-1]
    return run.load_snapshot(first)["h"][:n], run.load_snapshot(last)["h"][:n]


def timed(fn):  # noqa: ANN001, ANN201
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def measure_maps(name: str, x0: np.ndarray, x1: np.ndarray, subsets: list[int],
                 skip_before: bool) -> None:
    n = len(x1)
    row = {"bench": "umap", "points": n, "dim": x1.shape[1], "set": name}
    results: dict[str, tuple[np.ndarray, float]] = {}
    if not skip_before:
        results["before"] = timed(lambda: umap_2d(x1, **UMAP_PARAMS))
    cache = MapCache()
    results["cold"] = timed(lambda: cache_map(cache, MapKey("r", 1, "h"), x1))
    cache.clear()
    previous = cache_map(cache, MapKey("r", 0, "h"), x0)  # the previous snapshot's map, then
    results["warm"] = timed(lambda: cache_map(cache, MapKey("r", 1, "h"), x1))  # this one's
    for m in subsets:
        if m < n:
            results[f"subset_{m}"] = timed(lambda m=m: umap_2d(
                x1, **UMAP_PARAMS, n_epochs=layout_epochs(m), max_points=m))
    ref = results.get("before", results["cold"])[0]
    for what, (coords, seconds) in results.items():
        emit(**row, what=what, seconds=round(seconds, 2),
             knn_preservation=round(knn_preservation(x1, coords, 10), 4),
             agreement_with_before=round(map_agreement(coords, ref, 10), 4),
             shift_from_previous_map=round(map_shift(previous, coords), 3))


def cache_map(cache: MapCache, key: MapKey, x: np.ndarray) -> np.ndarray:
    cache.request(key, x, **UMAP_PARAMS)
    coords = cache.wait(key, timeout=600, **UMAP_PARAMS)
    if coords is None:
        raise RuntimeError(cache.error(key, **UMAP_PARAMS) or "no map")
    return coords


def measure_retrieval(bank: np.ndarray, queries: int = 200, k: int = 10) -> None:
    index, build_s = timed(lambda: NeighbourIndex(bank))
    rng = np.random.default_rng(0)
    rows = rng.choice(len(bank), queries, replace=False)
    times = {"faiss": [], "numpy": []}
    for r in rows:
        times["faiss"].append(timed(lambda r=r: index.neighbours_of([r], k))[1])
        times["numpy"].append(timed(lambda r=r: brute_force_search(bank, bank[[r]], k + 1))[1])
    _, idx = index.neighbours_of(rows[:50], k)
    _, ref = brute_force_search(bank, bank[rows[:50]], k + 1)
    same = np.mean([set(a) == set(b[b != r][:k]) for a, b, r in zip(idx, ref, rows[:50],
                                                                        strict=True)])
    emit(bench="retrieval", bank=len(bank), dim=bank.shape[1], k=k, build_s=round(build_s, 3),
         faiss_median_ms=round(1e3 * float(np.median(times["faiss"])), 2),
         numpy_float64_median_ms=round(1e3 * float(np.median(times["numpy"])), 2),
         same_neighbours_as_brute_force=float(same))


def measure(runs_dir: Path, skip_before: bool) -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    store = RunStore(runs_dir)
    run_id = cifar_run(store)
    bank = next((r.id for r in store.list() if r.config().name == BANK_RUN), None)
    if run_id is None or bank is None:
        sys.exit(f"run `bench/bench_map_scale.py prepare --runs-dir {runs_dir}` first")
    _, warm_up_s = timed(lambda: warm_up_umap(background=False))
    emit(bench="umap_warm_up", seconds=round(warm_up_s, 2))
    for n in (5000, 10_000):
        measure_maps("cifar10 test", *snapshots(store, run_id, n), [5000], skip_before)
    b0, b1 = snapshots(store, bank)
    measure_maps("cifar10 train bank", b0, b1, [10_000], skip_before)
    measure_retrieval(b1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["prepare", "measure"])
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs_bench" / "maps")
    ap.add_argument("--seconds", type=int, default=150, help="prepare: CIFAR-10 training time")
    ap.add_argument("--skip-before", action="store_true", help="measure: skip the old call")
    args = ap.parse_args()
    if args.what == "prepare":
        prepare(args.runs_dir, args.seconds)
    else:
        measure(args.runs_dir, args.skip_before)


if __name__ == "__main__":
    main()
