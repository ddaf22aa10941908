"""Several processes against one: learning, the one-GPU path's speed, and scaling over GPUs.

- ``knn`` (any machine, CPU included): SimCLR on shapes for a fixed number of steps at the
  same global batch, trained by one process and by ``--nproc`` processes (torchrun; gloo on
  the CPU, NCCL on GPUs), for each seed; prints the kNN top-1 of each run and the differences.
  On a CPU the processes share its cores: compare accuracies here, not speeds.
- ``overhead`` (one CUDA GPU): images per second of ``python -m engine bench`` in this tree
  and in a checkout of ``--before`` (default: the commit before distributed training came in),
  run alternately, ``--rounds`` times each, in fresh processes; prints the medians and their
  ratio. A run not launched by torchrun never enters the distributed code (``WORLD_SIZE`` is
  unset); this measures that it is not slowed either.
- ``scaling`` (a machine with several CUDA GPUs): images per second of a SimCLR run on
  ResNet-18 (CIFAR stem, 32 px) at ``--batch-per-gpu`` images per GPU, on 1, 2, ... GPUs
  (torchrun, one process per GPU), read from the runs' summaries (training steps only).

    python bench/bench_ddp.py knn --seeds 0 1 2
    python bench/bench_ddp.py overhead --rounds 5
    python bench/bench_ddp.py scaling --gpus 1 2 4 8

One JSON line per measurement, then a summary line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the last commit without distributed training (its parent is what ``overhead`` compares to)
FIRST_DDP_COMMIT = "8b2101d"


def run_json(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> dict:
    """The last JSON object a command prints (the run summary of ``python -m engine train``)."""
    out = subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-4000:]}")
    text = out.stdout
    return json.loads(text[text.index("{"):])


def train_cmd(nproc: int, sets: dict[str, object], runs: str) -> list[str]:
    engine = ["-m", "engine", "train", "--runs-dir", runs, "--quiet"]
    for k, v in sets.items():
        engine += ["--set", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
    if nproc == 1:
        return [sys.executable, *engine]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", *engine]


def knn(args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 1
    steps_per_epoch = args.train_size // args.batch
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for seed in args.seeds:
            for nproc in (1, args.nproc):
                sets = {
                    "method.name": "simclr", "seed": seed, "data.train_size": args.train_size,
                    "data.test_size": 1000, "train.batch_size": args.batch,
                    "train.epochs": args.steps / steps_per_epoch, "train.max_seconds": 0,
                    "train.device": args.device, "eval.every_seconds": 1e9,
                    "eval.diagnostics_every_steps": 0, "eval.linear_probe": False,
                    "eval.knn_train_size": 1000, "eval.knn_test_size": 1000,
                    "eval.snapshot_size": 0,
                }
                threads = str(max(1, cores // nproc))
                s = run_json(train_cmd(nproc, sets, runs), {"OMP_NUM_THREADS": threads})
                row = {"seed": seed, "processes": nproc, "steps": s["steps"],
                       "global_batch": args.batch, "knn_top1": s["knn_top1"],
                       "knn_colour": s.get("knn_colour"), "train_seconds": s["train_seconds"]}
                rows.append(row)
                print(json.dumps(row), flush=True)
    one = [r["knn_top1"] for r in rows if r["processes"] == 1]
    many = [r["knn_top1"] for r in rows if r["processes"] == args.nproc]
    diffs = [b - a for a, b in zip(one, many, strict=True)]
    print(json.dumps({
        "summary": "knn", "one_process_mean": statistics.mean(one),
        "several_processes_mean": statistics.mean(many), "differences": diffs,
        "seed_spread_one_process": max(one) - min(one),
    }))


@contextlib.contextmanager
def before_tree(args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """The tree to compare to and its name: ``--before-dir`` as it is (a machine without this
    repository's history: ``bench/prepare_gpu_carry.sh`` writes it), else a git worktree of
    ``--before`` for the block."""
    if args.before_dir:
        yield f"{FIRST_DDP_COMMIT}^ ({args.before_dir})", Path(args.before_dir).resolve()
        return
    before = args.before or f"{FIRST_DDP_COMMIT}^"
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), before], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            yield before, old
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT)


def overhead(args: argparse.Namespace) -> None:
    sets = ["--set", f"model.backbone={args.backbone}", "--set", f"train.batch_size={args.batch}",
            "--set", f"method.name={args.method}"]
    bench = [sys.executable, "-m", "engine", "bench", "--steps", str(args.steps), *sets]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    with before_tree(args) as (before, old):
        rates: dict[str, list[float]] = {"now": [], "before": []}
        for i in range(args.rounds):
            order = [("now", ROOT), ("before", old)]
            for name, cwd in order if i % 2 == 0 else order[::-1]:
                out = subprocess.run(bench, cwd=cwd, env=env, capture_output=True,
                                     text=True, check=True).stdout
                r = json.loads(out[out.index("{"):])
                rates[name].append(r["images_per_s"])
                print(json.dumps({"tree": name, "round": i, **r}), flush=True)
    now, then = statistics.median(rates["now"]), statistics.median(rates["before"])
    print(json.dumps({"summary": "overhead", "before": before, "now_images_per_s": now,
                      "before_images_per_s": then, "ratio": now / then}))


def scaling(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for n in args.gpus:
            batch = args.batch_per_gpu * n
            sets = {"method.name": "simclr", "model.backbone": "resnet18_cifar",
                    "data.name": args.data, "train.batch_size": batch,
                    "train.epochs": args.epochs, "train.max_seconds": 0,
                    "eval.every_seconds": 1e9, "eval.diagnostics_every_steps": 0,
                    "eval.linear_probe": False}
            s = run_json(train_cmd(n, sets, runs), {})
            row = {"gpus": n, "global_batch": batch, "images_per_s": s["images_per_s"],
                   "steps": s["steps"], "device": s.get("device")}
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = rows[0]["images_per_s"] / rows[0]["gpus"]
    print(json.dumps({"summary": "scaling", "efficiency": {
        r["gpus"]: r["images_per_s"] / (base * r["gpus"]) for r in rows}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("knn")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--steps", type=int, default=160)
    p.add_argument("--batch", type=int, default=128, help="global batch")
    p.add_argument("--train-size", type=int, default=2048)
    p.add_argument("--device", default="cpu")
    p.set_defaults(fn=knn)
    p = sub.add_parser("overhead")
    p.add_argument("--before", default=None, help="git revision to compare to")
    p.add_argument("--before-dir", default=None,
                   help="that revision's tree, already written (no git needed)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--backbone", default="resnet18_cifar")
    p.add_argument("--method", default="simclr")
    p.set_defaults(fn=overhead)
    p = sub.add_parser("scaling")
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch-per-gpu", type=int, default=512)
    p.add_argument("--data", default="cifar10")
    p.add_argument("--epochs", type=float, default=2.0)
    p.set_defaults(fn=scaling)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
