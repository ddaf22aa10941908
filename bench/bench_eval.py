"""Latency of the embedding-space tools the UI waits on: UMAP maps and neighbour search.

Prints one JSON object per line. Side by side with a peer doing the same work (DESIGN.md s. 6):
- UMAP: ``engine.eval.projection.umap_2d`` (exact faiss cosine kNN graph handed to umap-learn)
  against plain ``umap.UMAP(metric="cosine")`` (its own NNDescent kNN search), same seed.
  ``cold`` = first map in a fresh process (import + numba compile + map), measured in a
  subprocess; ``warm`` = a second map in that process. ``cold_empty_numba_cache`` points
  NUMBA_CACHE_DIR at an empty folder (the very first start on a machine); ``after_warm_up``
  is the first map after ``warm_up_umap`` has run (what the app's user sees).
- Search: faiss exact top-10 for one query against 50,000 vectors of dim 512, against numpy
  (normalised matmul + argpartition).

Usage: python bench/bench_eval.py [--sizes 5000 20000] [--no-peer] [--no-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clustered(n: int, d: int, clusters: int = 10, seed: int = 0) -> np.ndarray:
    """Embeddings shaped like a trained model's: ``clusters`` Gaussian blobs, (n, d) float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)) * 2.0
    return (centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, d))).astype(np.float32)


def emit(**row: object) -> None:
    print(json.dumps(row), flush=True)


# -- UMAP (runs inside a fresh subprocess) ---------------------------------------------------
def umap_child(impl: str, n: int, d: int, warm_up: bool) -> None:
    """Time a first and a second map in this (fresh) process; print both."""
    x = clustered(n, d)
    t0 = time.perf_counter()
    if impl == "ssl_studio":
        from engine.eval.projection import umap_2d, warm_up_umap

        if warm_up:
            warm_up_umap(background=False)
            emit(bench="umap_warm_up", impl=impl, seconds=round(time.perf_counter() - t0, 3))
        run = lambda: umap_2d(x, n_neighbors=15, min_dist=0.1, seed=0)  # noqa: E731
    else:
        import umap

        def run() -> np.ndarray:
            m = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0)
            return m.fit_transform(x)

    for phase in ("after_warm_up" if warm_up else "cold", "warm"):
        t = time.perf_counter()
        e = run()
        assert e.shape == (n, 2) and np.isfinite(e).all()
        emit(
            bench="umap",
            impl=impl,
            n=n,
            dim=d,
            phase=phase,
            seconds=round(time.perf_counter() - t, 3),
            since_process_start_s=round(time.perf_counter() - t0, 3),
        )


def umap_in_subprocess(impl: str, n: int, d: int, warm_up: bool, empty_cache: bool) -> None:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory() as cache:
        if empty_cache:
            env["NUMBA_CACHE_DIR"] = cache
        cmd = [sys.executable, __file__, "--child", impl, str(n), str(d)]
        cmd += ["--warm-up"] if warm_up else []
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        row = json.loads(line)
        if empty_cache and row.get("phase") == "cold":
            row["phase"] = "cold_empty_numba_cache"
        emit(**row)


# -- neighbour search -----------------------------------------------------------------------
def bench_search(n: int = 50_000, d: int = 512, k: int = 10, queries: int = 200) -> None:
    from engine.eval.retrieval import NeighbourIndex
    from engine.eval.vectors import l2_normalise

    x = clustered(n, d, clusters=50, seed=1)
    q = clustered(queries, d, clusters=50, seed=2)
    t = time.perf_counter()
    index = NeighbourIndex(x)
    emit(
        bench="search_build",
        impl="faiss_flat_ip",
        n=n,
        dim=d,
        seconds=round(time.perf_counter() - t, 4),
    )

    def numpy_top_k(v: np.ndarray) -> np.ndarray:
        s = xn @ l2_normalise(v[None])[0]  # (N,)
        top = np.argpartition(-s, k)[:k]
        return top[np.argsort(-s[top])]

    xn = l2_normalise(x)
    impls = {"faiss_flat_ip": lambda v: index.search(v[None], k)[1][0], "numpy": numpy_top_k}
    medians = {}
    for name, fn in impls.items():
        fn(q[0])  # first call pays allocations
        times = []
        for v in q:
            t = time.perf_counter()
            fn(v)
            times.append(time.perf_counter() - t)
        medians[name] = float(np.median(times))
        emit(
            bench="search_top10_one_query",
            impl=name,
            n=n,
            dim=d,
            k=k,
            median_ms=round(medians[name] * 1e3, 3),
            p90_ms=round(float(np.percentile(times, 90)) * 1e3, 3),
        )
    agree = np.mean([np.array_equal(impls["faiss_flat_ip"](v), numpy_top_k(v)) for v in q[:50]])
    emit(
        bench="search_top10_one_query",
        ratio_numpy_over_faiss=round(medians["numpy"] / medians["faiss_flat_ip"], 2),
        same_top10_fraction=float(agree),
    )
    t = time.perf_counter()
    index.search(q, k)
    emit(
        bench="search_top10_batch",
        impl="faiss_flat_ip",
        n=n,
        dim=d,
        queries=queries,
        seconds=round(time.perf_counter() - t, 4),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--no-peer", action="store_true", help="skip plain umap-learn")
    ap.add_argument("--no-cold", action="store_true", help="skip the empty-cache cold start")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--warm-up", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        impl, n, d = args.child
        umap_child(impl, int(n), int(d), args.warm_up)
        return
    emit(bench="machine", cpus=os.cpu_count(), python=sys.version.split()[0])
    bench_search()
    for n in args.sizes:
        if not args.no_cold:
            umap_in_subprocess("ssl_studio", n, args.dim, warm_up=False, empty_cache=True)
        umap_in_subprocess("ssl_studio", n, args.dim, warm_up=False, empty_cache=False)
        umap_in_subprocess("ssl_studio", n, args.dim, warm_up=True, empty_cache=False)
        if not args.no_peer:
            umap_in_subprocess("umap-learn", n, args.dim, warm_up=False, empty_cache=False)


if __name__ == "__main__":
    main()
