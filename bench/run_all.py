"""Every benchmark in one command (``make bench``): runs each script, prints one table, and
writes every result as JSON to ``runs_bench/bench_results.json`` (git-ignored).

Each benchmark runs in its own process (a fresh interpreter, so one's threads, caches and
compiled kernels do not help or hinder the next) and prints JSON lines; the table shows the
figures that BENCHMARKS.md reports. The GPU benchmark skips, with a message, without CUDA.
The methods benchmark (every method trained for minutes) and the CIFAR-10 one (SimCLR against
lightly for 300 s each) are slow and run only with ``--all`` or ``--only methods cifar10_cpu``.
Install the peers first: ``pip install -r bench/requirements.txt``.

    .venv/bin/python bench/run_all.py                       # all but the slow ones
    .venv/bin/python bench/run_all.py --only train_step latency
    .venv/bin/python bench/run_all.py --all --out runs_bench/all.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

from engine.openmp import set_wait_policy  # noqa: E402


@dataclass
class Bench:
    """A benchmark script and which of its JSON lines and fields go into the table."""

    name: str
    argv: list[str]
    label: tuple[str, ...]  # fields that name a row's case
    figures: tuple[str, ...]  # fields shown, when present
    when: dict = field(default_factory=dict)  # only lines with these field values
    slow: bool = False


BENCHES = [
    Bench("train_step", [str(BENCH / "bench_train_step.py")], ("backbone", "batch"),
          ("ours_img_s", "lightly_w0_img_s", "lightly_w1_img_s", "lightly_w2_img_s",
           "lightly_cl_w0_img_s", "lightly_cl_w1_img_s", "lightly_cl_w2_img_s",
           "model_only_img_s", "lightly_best_workers", "ratio_vs_lightly",
           "ratio_vs_lightly_channels_last", "fraction_of_model_only")),
    Bench("engine_bench", ["-m", "engine", "bench"], ("backbone", "batch_size"),
          ("images_per_s", "model_only_images_per_s", "fraction_of_model_only")),
    Bench("augment", [str(BENCH / "bench_augment.py"), "--devices", "cpu"], ("device", "batch"),
          ("ours_img_s", "kornia_img_s", "lightly_img_s", "ratio_vs_kornia", "ratio_vs_lightly")),
    Bench("latency", [str(BENCH / "bench_latency.py")], ("config",),
          ("first_step_s", "snapshot0_to_pca_s", "snapshot0_to_umap_s", "snapshot1_to_pca_s",
           "snapshot1_to_umap_s"), when={"bench": "latency"}),
    Bench("eval", [str(BENCH / "bench_eval.py")], ("bench", "impl", "n", "phase"),
          ("seconds", "median_ms", "p90_ms", "ratio_numpy_over_faiss")),
    Bench("diagnostics", [str(BENCH / "bench_diagnostics.py")], ("bench",),
          ("steps_per_s_off", "steps_per_s_on", "overhead_percent"),
          when={"bench": "diagnostics_overhead"}),
    Bench("gpu", [str(BENCH / "bench_gpu.py")], ("method", "batch"),
          ("skipped", "images_per_s", "model_only_images_per_s", "fraction_of_bf16_peak")),
    Bench("methods", [str(BENCH / "bench_methods.py")], (), (), slow=True),
    Bench("cifar10_cpu", [str(BENCH / "bench_cifar10_cpu.py")], ("pipeline",),
          ("knn_top1", "steps", "images_per_s"), when={"bench": "cifar10_cpu"}, slow=True),
]


def machine() -> dict:
    """Where the figures come from (lscpu's model name, cores, library versions)."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                     if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    import torch

    return {
        "date": datetime.date.today().isoformat(),
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def run(bench: Bench) -> dict:
    """Run one benchmark; its JSON lines, other output kept as text."""
    cmd = [sys.executable, *bench.argv]
    print(f"\n== {bench.name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    # The engine's OpenMP wait policy (engine/openmp.py) for every script, peers included,
    # whether or not it imports torch before the engine.
    env = dict(os.environ)
    set_wait_policy(env)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    rows, text = [], []
    for line in proc.stdout:
        print(f"   {line.rstrip()}", file=sys.stderr, flush=True)
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            text.append(line.rstrip())
    proc.wait()
    return {"name": bench.name, "command": " ".join(["python", *bench.argv]),
            "returncode": proc.returncode, "seconds": round(time.perf_counter() - t0, 1),
            "rows": rows, "text": text}


def table(benches: list[Bench], results: list[dict]) -> list[str]:
    """One Markdown table: benchmark | case | figure | value."""
    lines = ["| benchmark | case | figure | value |", "|---|---|---|---|"]
    for bench, result in zip(benches, results, strict=True):
        if result["returncode"]:
            lines.append(f"| {bench.name} | | failed | exit code {result['returncode']} |")
            continue
        for row in result["rows"]:
            if any(row.get(k) != v for k, v in bench.when.items()):
                continue
            case = " ".join(str(row[k]) for k in bench.label if k in row)
            for fig in bench.figures:
                value = row.get(fig)
                if isinstance(value, float):
                    value = round(value, 3) if abs(value) < 1000 else round(value)
                if value is not None:
                    lines.append(f"| {bench.name} | {case} | {fig} | {value} |")
        if bench.slow and result["text"]:
            lines.append(f"| {bench.name} | | see its own table above | |")
            print("\n".join(result["text"]))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES])
    ap.add_argument("--all", action="store_true", help="include the slow benchmarks")
    ap.add_argument("--out", type=Path, default=ROOT / "runs_bench" / "bench_results.json")
    args = ap.parse_args()
    chosen = [b for b in BENCHES
              if (b.name in args.only if args.only else args.all or not b.slow)]
    info = machine()
    results = [run(b) for b in chosen]
    print(f"\nMachine: {info['cpu']}, {info['cores']} cores (shared with other work: compare "
          f"ratios within a benchmark, not absolute rates), torch {info['torch']}, "
          f"{info['date']}, GPU: {info['gpu'] or 'none'}\n")
    print("\n".join(table(chosen, results)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": info, "benchmarks": results}, indent=2))
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    if any(r["returncode"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
