"""The README's command-line examples, run as written: each method with nothing but
``--set method.name=X --set train.max_seconds=T`` (the engine's defaults and the method's own
recipe), on the built-in ``shapes`` set, on this machine's CPU.

Reports each run's kNN top-1 on shape at step 0 (the untrained backbone) and at the end, and
the gain. What the README promises on a 2-core CPU: SupCon and cross-entropy reach 0.9 in 60 s;
every self-supervised method gains at least 0.1 in 180 s.

    .venv/bin/python bench/bench_cli_recipe.py                  # every method
    .venv/bin/python bench/bench_cli_recipe.py --only byol supcon
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.methods import METHODS  # noqa: E402
from engine.train.store import RunStore  # noqa: E402

#: seconds per run: supervised methods 60, self-supervised 180 (the README's figures)
SUPERVISED_S, SELF_SUPERVISED_S = 60, 180
#: rotation means little on shapes (rotation-symmetric shapes drawn at random angles)
SKIP = {"rotation"}


def run(name: str, seconds: int, runs: Path) -> dict:
    """One CLI run, exactly as the README writes it; its first and last kNN."""
    argv = [sys.executable, "-m", "engine", "train", "--quiet", "--runs-dir", str(runs),
            "--set", f"method.name={name}", "--set", f"train.max_seconds={seconds}"]
    before = {r.id for r in RunStore(runs).list()}
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    [new] = [r for r in RunStore(runs).list() if r.id not in before] or [None]
    if proc.returncode or new is None:
        return {"method": name, "error": proc.stderr.strip().splitlines()[-1:]}
    evals = new.metrics("eval")
    first, last = evals[0]["knn_top1"], evals[-1]["knn_top1"]
    s = new.summary()
    return {"method": name, "seconds": seconds, "untrained": first, "trained": last,
            "gain": last - first, "steps": s.get("steps"), "wall_s": round(wall, 1),
            "command": "python -m engine train " + " ".join(argv[7:])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--seconds", type=int, default=0, help="every run's budget (a quick check)")
    p.add_argument("--out", type=Path, default=ROOT / "runs_bench" / "cli_recipe.json")
    args = p.parse_args()
    names = args.only or [n for n in METHODS.names() if n not in SKIP]
    print("| method | budget (s) | kNN untrained | kNN trained | gain | steps |")
    print("|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            supervised = METHODS.get(name).needs_labels
            seconds = args.seconds or (SUPERVISED_S if supervised else SELF_SUPERVISED_S)
            r = run(name, seconds, Path(tmp))
            rows.append(r)
            if "error" in r:
                print(f"| {name} | failed: {r['error']} |", flush=True)
                continue
            print(f"| {name} | {r['seconds']} | {r['untrained']:.3f} | {r['trained']:.3f} | "
                  f"{r['gain']:+.3f} | {r['steps']} |", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
