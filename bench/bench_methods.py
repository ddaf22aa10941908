"""Every method on ``shapes`` (and rotation on ``digits``) on this machine's CPU: kNN top-1
untrained and after a fixed time budget, steps and images per second; plus the
semi-supervised comparison (10 labels per class) and the supervised 60-second runs.

    .venv/bin/python bench/bench_methods.py [--only simclr byol ...] [--out runs_bench/methods.json]

Uses the recipe of ``tests/test_methods_learning.py`` (the slow learning tests assert the
same margins) and prints a Markdown table for BENCHMARKS.md. Each row's command reproduces
the run through the CLI.
"""

from __future__ import annotations

import argparse
import json
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
from tests.test_methods_learning import (  # noqa: E402
    COMMON,
    ROTATION_RUN,
    SEMI_BUDGET,
    SSL_BUDGET,
    SSL_RUNS,
    SUPERVISED_BUDGET,
    SUPERVISED_RUNS,
    classifier_accuracy,
    recipe,
    train,
)

#: name -> (overrides, budget in seconds)
RUNS: dict[str, tuple[dict, float]] = {
    **{name: ({"method.name": name, **o}, SSL_BUDGET) for name, o in SSL_RUNS.items()},
    "rotation": (ROTATION_RUN, SSL_BUDGET),
    **{name: ({"method.name": name, **o}, SUPERVISED_BUDGET)
       for name, o in SUPERVISED_RUNS.items()},
    "triplet": ({"method.name": "triplet"}, SUPERVISED_BUDGET),
}


def command(overrides: dict) -> str:
    sets = " ".join(f"--set {k}={v}" for k, v in recipe(overrides).items())
    return f"python -m engine train {sets}"


def one(tmp: Path, name: str) -> dict:
    overrides, budget = RUNS[name]
    overrides = {**overrides, "train.max_seconds": budget}
    t0 = time.perf_counter()
    _, untrained, done = train(tmp, overrides)
    return {
        "method": name, "budget_s": budget, "untrained": untrained["knn_top1"],
        "knn_top1": done["knn_top1"], "gain": done["knn_top1"] - untrained["knn_top1"],
        "linear_top1": done.get("linear_top1"),
        "steps": done["steps"], "images_per_s": done["images_per_s"],
        "wall_s": time.perf_counter() - t0, "command": command(overrides),
    }


def semi_supervised(tmp: Path) -> list[dict]:
    """FixMatch and SESEMI against cross-entropy on exactly the same 10 labels per class."""
    semi = {"data.labels_per_class": 10, "train.max_seconds": SEMI_BUDGET}
    dataset = load_dataset(RunConfig().with_overrides({**COMMON, **semi}).data)
    labelled = torch.nonzero(dataset.train.labels >= 0).flatten()
    only = type(dataset)(**{**dataset.__dict__, "train": dataset.train.subset(labelled)})
    rows = []
    for name, ds, extra in (("cross_entropy (labelled only)", only, {"train.epochs": 100000}),
                            ("fixmatch", dataset, {}), ("sesemi", dataset, {})):
        method = name.split()[0]
        run, _, done = train(tmp, {**semi, **extra, "method.name": method}, dataset=ds)
        rows.append({"method": name, "test_accuracy": classifier_accuracy(run, ds),
                     "steps": done["steps"], "images_per_s": done["images_per_s"],
                     "command": command({**semi, **extra, "method.name": method})})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None, help="method names (default: all)")
    p.add_argument("--semi", action="store_true", help="also the 10-labels-per-class runs")
    p.add_argument("--out", type=Path, default=ROOT / "runs_bench" / "methods.json")
    p.add_argument("--keep", type=Path, default=None,
                   help="keep the run directories here (runs go to DIR/runs), e.g. to open them "
                   "in the app; default: a temporary folder")
    args = p.parse_args()
    names = args.only or list(RUNS)
    results: dict = {"device": "cpu", "threads": torch.get_num_threads(), "runs": []}
    print("| method | budget (s) | kNN untrained | kNN trained | gain | linear probe | steps "
          "| images/s |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(args.keep or scratch)
        for name in names:
            r = one(Path(tmp), name)
            results["runs"].append(r)
            probe = "-" if r["linear_top1"] is None else f"{r['linear_top1']:.3f}"
            print(f"| {name} | {r['budget_s']:.0f} | {r['untrained']:.3f} | {r['knn_top1']:.3f} "
                  f"| {r['gain']:+.3f} | {probe} | {r['steps']} | {r['images_per_s']:.0f} |",
                  flush=True)
        if args.semi:
            results["semi"] = semi_supervised(Path(tmp))
            for r in results["semi"]:
                print(f"| {r['method']} (10 labels/class) | {SEMI_BUDGET:.0f} | test accuracy "
                      f"{r['test_accuracy']:.3f} | | | | {r['steps']} | {r['images_per_s']:.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
