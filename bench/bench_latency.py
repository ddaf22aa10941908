"""What a person waits for in the app: pressing Train to the first loss point, and a finished
embedding snapshot to a map on the screen.

On the Train page's default run (shapes, SimCLR, small CNN, batch 128, kNN bank and test set of
1,000 images: the page's defaults, which are smaller than the engine's), in a warm process as in
the app (torch imported, the data set already loaded and cached, UMAP's compilation warmed up in
the background at app start, as ``app.state.map_cache`` does):

- ``first_step_s``: ``RunRegistry.start`` (what the Train button calls) to the first ``step``
  event in the run's EventLog (the first point on the loss chart); ``first_start_s`` and
  ``first_eval_s`` say where the time went.
- ``snapshot_to_pca_s`` / ``snapshot_to_umap_s``: a ``snapshot`` event in the log to its PCA
  map and its UMAP map through ``engine.eval.maps.MapCache`` (what the Explore page calls),
  while the run goes on training beside it. Measured for the first snapshot (step 0) and the
  next one.

Prints one JSON line per measurement. ``--repeats`` runs the whole thing that many times (a
fresh run each time; the median is what BENCHMARKS.md reports).

    .venv/bin/python bench/bench_latency.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split

import torch  # noqa: E402

from engine.config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.eval.maps import MapCache, MapKey  # noqa: E402
from engine.train.metrics_reader import MetricsReader  # noqa: E402
from engine.train.registry import RunRegistry  # noqa: E402
from engine.train.store import RunStore  # noqa: E402

#: The Train page's defaults (app/run_form.py: DEFAULT_BATCH, DEFAULT_SECONDS, eval_setup).
APP_DEFAULTS = {
    "train.batch_size": 128,
    "train.epochs": 10_000,
    "train.max_seconds": 120,
    "eval.knn_train_size": 1000,
    "eval.knn_test_size": 1000,
    "eval.snapshot_size": 1000,
    "eval.every_seconds": 15,
}
UMAP_PARAMS = {"n_neighbors": 15, "min_dist": 0.1, "seed": 0}  # app/mapview.py


def emit(**row: object) -> None:
    print(json.dumps(row), flush=True)


def one_run(registry: RunRegistry, maps: MapCache, dataset, snapshots: int) -> dict[str, float]:  # noqa: ANN001
    """Start a run, time its first events and the maps of its first ``snapshots`` snapshots.

    Event times are the recorder's own time stamps (when the event was written), so the
    time this reader spends waiting for a map does not delay the events it reads next.
    """
    cfg = RunConfig().with_overrides(APP_DEFAULTS)
    t0 = time.time()
    runner = registry.start(cfg, dataset)
    out: dict[str, float] = {}
    reader = MetricsReader(runner.run)  # the app follows a run through its directory
    seen = 0
    try:
        while (seen < snapshots or "first_step_s" not in out) and time.time() - t0 < 600:
            events, _ = reader.read()
            if not events:
                time.sleep(0.05)
            for ev in events:
                kind, at = ev["type"], ev.get("time", time.time()) - t0
                if kind == "failed":
                    raise RuntimeError(ev["error"])
                if kind in ("start", "eval", "step"):
                    out.setdefault(f"first_{kind}_s", at)
                elif kind == "snapshot" and seen < snapshots:
                    arrays = runner.run.load_snapshot(ev["step"])
                    key = MapKey(runner.id, ev["step"], "h")
                    published = ev["time"]
                    maps.pca(key, arrays["h"])
                    out[f"snapshot{seen}_to_pca_s"] = time.time() - published
                    maps.request(key, arrays["h"], "umap", **UMAP_PARAMS)
                    if maps.wait(key, "umap", timeout=300, **UMAP_PARAMS) is None:
                        raise RuntimeError(f"no UMAP map: {maps.error(key, 'umap', **UMAP_PARAMS)}")
                    out[f"snapshot{seen}_to_umap_s"] = time.time() - published
                    out[f"snapshot{seen}_step"] = ev["step"]
                    seen += 1
    finally:
        runner.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--snapshots", type=int, default=2, help="snapshots mapped per run")
    args = ap.parse_args()
    cfg = RunConfig().with_overrides(APP_DEFAULTS)
    dataset = load_dataset(cfg.data)  # the app loads and caches it while drawing the page
    maps = MapCache()
    t = time.perf_counter()
    maps.warm_up()  # the app starts this when its map cache is first created
    while maps.busy():
        time.sleep(0.05)
    emit(bench="umap_warm_up", seconds=round(time.perf_counter() - t, 3))
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        registry = RunRegistry(RunStore(Path(runs)))
        for i in range(args.repeats):
            row = one_run(registry, maps, dataset, args.snapshots)
            rows.append(row)
            emit(bench="latency_run", repeat=i, **{k: round(v, 3) for k, v in row.items()})
    medians = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
    emit(bench="latency", repeats=args.repeats, threads=torch.get_num_threads(),
         config="app Train page defaults: shapes, simclr, small_cnn, batch 128", **medians)


if __name__ == "__main__":
    main()
