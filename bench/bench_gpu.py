"""The GPU figures of the performance issue. Skips, with a message, where there is no CUDA GPU.

- ``throughput``: images per second of every registered method at batch 512 with ResNet-18
  (CIFAR stem) at 32 px, bf16 autocast,
  channels_last, fused optimiser: the full step (views made on the GPU) and the model-only step
  in alternation (``engine.bench``), the FLOPs of one step (``torch.utils.flop_counter``) and
  the fraction of the GPU's dense bf16 peak they reach.
- ``parity`` (``--parity``): the science before the speed. Our SimCLR against lightly's own
  CIFAR-10 recipe (``simclr_pipelines.lightly``: its DataLoader of PIL images, its
  ``SimCLRTransform`` and ``NTXentLoss``) for the same ``--parity-epochs`` on the same GPU,
  network, initial weights, batch and optimiser (lightly's SGD), both judged by the same kNN
  (k 200, T 0.1, all 50,000 train images as the bank, all 10,000 test images).
- ``time_to_knn`` (``--time-to-knn``): SimCLR, ResNet-18 CIFAR stem, batch 512, on CIFAR-10
  read by the folder loader from ``cifar10-jpg.tar.gz``, kNN (k 200, T 0.1, all 50,000 train
  images as the bank, all 10,000 test images) every ``--eval-every`` epochs: the wall time at
  which kNN top-1 first reaches 0.848, lightly's published SimCLR figure (200 epochs, 87 min on
  one RTX A6000). ``--minutes`` caps the run's wall time; the cosine schedule then follows the
  time (``train.max_seconds``), so the run ends annealed: the best kNN reachable in that time.

    python3 bench/bench_gpu.py --all --cifar10 .devdata/cifar10-jpg.tar.gz   # all, ~9 min
    python bench/bench_gpu.py                                   # throughput, every method
    python bench/bench_gpu.py --methods simclr byol --steps 30
    python bench/bench_gpu.py --time-to-knn --cifar10 .devdata/cifar10-jpg.tar.gz --epochs 200
    python bench/bench_gpu.py --device cpu --methods simclr --steps 2 --batch 16   # check only

One JSON line per method / run; ``--all`` runs the throughput of ``--methods`` (default
SimCLR and BYOL) without and with ``torch.compile``, the parity check and a time-to-kNN run
capped at ``--minutes`` (default 4), then prints every figure again as BENCHMARKS.md table rows.
lightly is not needed elsewhere: on a machine without it the parity check says so and the rest
runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split
import torch  # noqa: E402

from engine.bench import interleave, step_timer, sync  # noqa: E402
from engine.cli import parse_sets  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.methods import METHODS  # noqa: E402
from engine.train.loop import Trainer  # noqa: E402
from engine.train.runner import run_foreground  # noqa: E402
from engine.train.store import RunStore  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simclr_pipelines import knn_accuracy, lightly, ours, train  # noqa: E402

#: dense bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s (no sparsity)
BF16_PEAK_TFLOPS = {
    "H200": 989.4,
    "H100 SXM": 989.4,
    "H100 80GB HBM3": 989.4,
    "H100 PCIe": 756.0,
    "A100": 312.0,
    "RTX A6000": 154.8,
    "L40S": 362.1,
    "L4": 121.0,
}
LIGHTLY_KNN, LIGHTLY_MINUTES = 0.848, 87  # SimCLR, ResNet-18, batch 512, 200 epochs, A6000


ROWS: list[dict] = []  # every row emitted, for the table rows at the end of --all


def emit(**row: object) -> None:
    ROWS.append(row)
    print(json.dumps(row), flush=True)


def device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else "cpu"


def bf16_peak(name: str, override: float) -> float | None:
    if override:
        return override
    for key, tflops in BF16_PEAK_TFLOPS.items():
        if key in name:
            return tflops
    return None


def step_flops(trainer: Trainer) -> int:
    """FLOPs of one training step (forward and backward matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    idx, x = next(trainer.batches())
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(idx, trainer.base_lr, 0.0, x)
    return counter.get_total_flops()


def data_settings(args: argparse.Namespace) -> dict:
    if args.cifar10:
        return {"data.name": "folder", "data.root": args.cifar10, "data.image_size": 32}
    return {"data.train_size": 50_000, "data.test_size": 1000}


def load(args: argparse.Namespace) -> object:
    t0 = time.perf_counter()
    dataset = load_dataset(RunConfig().with_overrides(data_settings(args)).data)
    emit(bench="gpu_data", name=dataset.name, train=len(dataset.train),
         load_s=round(time.perf_counter() - t0, 1))
    return dataset


def throughput(args: argparse.Namespace, dataset: object, compile_: bool,
               flops: dict[str, int]) -> None:
    """One row per method; ``flops`` (method -> FLOPs of a step) is filled by an uncompiled
    pass and read by a compiled one (the counter does not see inside a compiled graph)."""
    name = device_name(args.device)
    peak = bf16_peak(name, args.peak_tflops)
    for method in args.methods or METHODS.names():
        cfg = RunConfig().with_overrides({
            **data_settings(args),
            "method.name": method,
            "model.backbone": "resnet18_cifar",
            "train.batch_size": args.batch,
            "train.compile": compile_,
            "train.device": args.device,
        })
        try:
            throughput_row(args, cfg, dataset, name, peak, flops)
        except Exception as exc:  # one method's failure must not hide the others' figures
            emit(bench="gpu_throughput", method=method, error=f"{type(exc).__name__}: {exc}")
        if args.device == "cuda":
            torch.cuda.empty_cache()


def throughput_row(
    args: argparse.Namespace, cfg: RunConfig, dataset: object, name: str, peak: float | None,
    flops_of: dict[str, int],
) -> None:
    """Time one method's full and model-only steps and emit its row. ``first_step_s``: the
    first full step, which holds the compilation under ``torch.compile``."""
    method = cfg.method.name
    trainer = Trainer(cfg, dataset)
    if method not in flops_of:
        uncompiled = trainer if not cfg.train.compile else Trainer(
            cfg.with_overrides({"train.compile": False}), dataset)
        flops_of[method] = step_flops(uncompiled)
    flops = flops_of[method]
    timers = {"full": step_timer(trainer), "model_only": step_timer(trainer, True)}
    first_step_s = timers["full"](1)
    samples = interleave(timers, args.rounds, max(1, args.steps // args.rounds), warmup=5)
    seconds = {k: statistics.median(v) for k, v in samples.items()}
    tflops = flops / seconds["full"] / 1e12
    emit(
        bench="gpu_throughput", device=name, method=method, backbone=cfg.model.backbone,
        batch=trainer.batch_size, precision=str(trainer.amp_dtype).replace("torch.", ""),
        compile=cfg.train.compile and trainer.device.type == "cuda",
        first_step_s=round(first_step_s, 2),
        resident=trainer.resident,
        images_per_s=round(trainer.batch_size / seconds["full"], 1),
        model_only_images_per_s=round(trainer.batch_size / seconds["model_only"], 1),
        fraction_of_model_only=round(seconds["model_only"] / seconds["full"], 3),
        gflops_per_step=round(flops / 1e9, 1), achieved_tflops=round(tflops, 1),
        fraction_of_bf16_peak=round(tflops / peak, 4) if peak else None,
        bf16_peak_tflops=peak,
    )


def cifar_config(args: argparse.Namespace, **sets: object) -> RunConfig:
    """SimCLR on the CIFAR-10 folder with SimCLR's CIFAR recipe and lightly's optimiser, the kNN
    of the issue (k 200, T 0.1, every train image in the bank, every test image)."""
    return RunConfig().with_overrides({
        "data.name": "folder", "data.root": args.cifar10, "data.image_size": 32,
        "method.name": "simclr", "model.backbone": "resnet18_cifar",
        # SimCLR's CIFAR-10 recipe: crops down to 8 % of the image; NT-Xent at T 0.5 (lightly)
        "augment.preset": "simclr_cifar", "method.temperature": 0.5,
        "train.batch_size": args.batch, "train.epochs": args.epochs,
        "train.compile": args.compile, "train.device": args.device,
        "train.max_seconds": args.minutes * 60,
        # lightly's CIFAR-10 benchmark recipe: SGD 0.06 per 128 images, momentum 0.9, wd 5e-4
        "train.optimizer": "sgd", "train.lr": 0.12, "train.momentum": 0.9,
        "train.weight_decay": 5e-4,
        "eval.knn_k": 200, "eval.knn_temperature": 0.1, "eval.knn_train_size": 0,
        "eval.knn_test_size": 0, "eval.every_epochs": args.eval_every,
        "eval.diagnostics_every_steps": 0, "eval.linear_probe": False,
        "train.checkpoint_every_seconds": 0,
        **parse_sets(args.set), **sets,
    })


def has_cifar10(args: argparse.Namespace, bench: str) -> bool:
    if args.cifar10 and Path(args.cifar10).exists():
        return True
    emit(bench=bench, skipped=f"CIFAR-10 archive not found: {args.cifar10!r} "
         "(copy ../shared/data/cifar10-jpg.tar.gz and pass --cifar10)")
    return False


def parity(args: argparse.Namespace, dataset: object) -> None:
    """Ours and lightly's recipe for the same epochs, one after the other, the same kNN."""
    try:  # what simclr_pipelines.lightly imports: lightly loads its dependencies lazily
        from lightly.loss import NTXentLoss  # noqa: F401
        from lightly.transforms import SimCLRTransform  # noqa: F401
    except ImportError as exc:
        emit(bench="gpu_parity", skipped=f"lightly cannot be imported ({exc}); "
             "pip install -r bench/requirements.txt, or carry bench/prepare_gpu_carry.sh's wheels")
        return
    cfg = cifar_config(args, **{"train.epochs": args.parity_epochs, "train.max_seconds": 0})
    trainer = Trainer(cfg, dataset)
    steps = int(trainer.schedule.total_steps)
    knn = {}
    peer = lightly(trainer, dataset, trainer.cfg.train.channels_last, args.workers)
    for pipe in (ours(trainer), peer):
        train(pipe, trainer, lambda p: p.steps >= steps, lambda p: p.steps / steps)
        sync(trainer.device)
        knn[pipe.name] = knn_accuracy(pipe.net, dataset, trainer, 0, k=200, temperature=0.1)
        emit(bench="gpu_parity", device=device_name(args.device), pipeline=pipe.name,
             epochs=round(pipe.steps / trainer.steps_per_epoch, 2), steps=pipe.steps,
             minutes=round(pipe.seconds / 60, 2),
             images_per_s=round(pipe.steps * trainer.batch_size / pipe.seconds, 1),
             final_loss=round(pipe.loss, 3), knn_top1=round(knn[pipe.name], 4))
    emit(bench="gpu_parity_summary", epochs=args.parity_epochs, batch=trainer.batch_size,
         ours_minus_lightly=round(knn["ours"] - knn[peer.name], 4))


def time_to_knn(args: argparse.Namespace, dataset: object | None = None) -> None:
    cfg = cifar_config(args)
    t0 = time.perf_counter()
    reached: dict[str, float] = {}
    best = {"knn_top1": 0.0}
    epoch = {"now": 0.0}  # the latest step's epoch

    def on_event(ev: dict) -> None:
        epoch["now"] = ev.get("epoch", epoch["now"])
        if ev["type"] == "eval" and "knn_top1" in ev:
            if ev["knn_top1"] > best["knn_top1"]:
                best.update(knn_top1=ev["knn_top1"], step=ev["step"])
            if ev["knn_top1"] >= args.target and not reached:
                reached.update(seconds=time.perf_counter() - t0, step=ev["step"])
            emit(bench="gpu_time_to_knn_eval", step=ev["step"],
                 epoch=round(epoch["now"], 2), knn_top1=ev["knn_top1"],
                 elapsed_s=round(time.perf_counter() - t0, 1))

    with tempfile.TemporaryDirectory() as runs:
        _, last = run_foreground(cfg, RunStore(Path(runs)), on_event=on_event,
                                 dataset=dataset)
    emit(
        bench="gpu_time_to_knn", device=device_name(args.device), epochs=args.epochs,
        minutes_cap=args.minutes or None, epochs_done=round(epoch["now"], 2),
        target=args.target, status=last.get("status", last.get("error")),
        reason=last.get("reason"),
        minutes_to_target=round(reached["seconds"] / 60, 2) if reached else None,
        best_knn_top1=best["knn_top1"], final_knn_top1=last.get("knn_top1"),
        minutes_total=round((time.perf_counter() - t0) / 60, 2),
        images_per_s=last.get("images_per_s"),
        lightly=f"{LIGHTLY_KNN} in {LIGHTLY_MINUTES} min (RTX A6000, 200 epochs)",
    )


def part(bench: str, run: Callable[..., None], *args: object) -> None:
    """One part of ``--all``: its failure is a line of the output, and the next part runs."""
    try:
        run(*args)
    except Exception as exc:  # noqa: BLE001 — a GPU session is too short to lose the rest
        emit(bench=bench, error=f"{type(exc).__name__}: {exc}")
    if torch.cuda.is_available():  # what a failed part held, for the next one
        torch.cuda.empty_cache()


def table_rows() -> None:
    """Every figure of this run again, as BENCHMARKS.md table rows."""
    print("\n| method | torch.compile | first step (s) | full img/s | model-only img/s | "
          "full ÷ model-only | TFLOP/s | of bf16 peak |\n|---|---|---|---|---|---|---|---|")
    for r in ROWS:
        if r["bench"] == "gpu_throughput" and "error" not in r:
            peak = r["fraction_of_bf16_peak"]
            print(f"| {r['method']} | {'on' if r['compile'] else 'off'} | {r['first_step_s']} | "
                  f"{r['images_per_s']:,.0f} | {r['model_only_images_per_s']:,.0f} | "
                  f"{r['fraction_of_model_only']} | {r['achieved_tflops']} | "
                  f"{f'{peak:.1%}' if peak else '?'} |")
    print("\n| pipeline | epochs | minutes | img/s | final loss | kNN top-1 |\n"
          "|---|---|---|---|---|---|")
    for r in ROWS:
        if r["bench"] == "gpu_parity" and "pipeline" in r:
            print(f"| {r['pipeline']} | {r['epochs']} | {r['minutes']} | "
                  f"{r['images_per_s']:,.0f} | {r['final_loss']} | {r['knn_top1']} |")
    for r in ROWS:
        if r["bench"] in ("gpu_parity", "gpu_time_to_knn") and ("skipped" in r or "error" in r):
            print(f"\n{r['bench']}: {r.get('skipped') or 'failed: ' + r['error']}")
        elif r["bench"] == "gpu_time_to_knn":
            print(f"\nTime to kNN: {r['device']}, {r['epochs_done']} epochs in "
                  f"{r['minutes_total']} min (cap {r['minutes_cap']}), best kNN "
                  f"{r['best_knn_top1']}, final {r['final_knn_top1']}, target {r['target']} "
                  f"reached after {r['minutes_to_target']} min, "
                  f"{r['images_per_s'] or 0:,.0f} img/s")
        elif r["bench"] == "gpu_data":
            print(f"\nData: {r['name']}, {r['train']} train images loaded in {r['load_s']} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true",
                    help="throughput without and with torch.compile, parity, time to kNN")
    ap.add_argument("--methods", nargs="*", help="default: every registered method "
                    "(with --all: simclr byol)")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=40, help="timed steps per pipeline")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    ap.add_argument("--peak-tflops", type=float, default=0.0,
                    help="dense bf16 peak of this GPU (default: from a table of known GPUs)")
    ap.add_argument("--parity", action="store_true", help="ours against lightly, same epochs")
    ap.add_argument("--parity-epochs", type=float, default=10)
    ap.add_argument("--workers", type=int, default=min(12, max(0, (os.cpu_count() or 1) - 2)),
                    help="DataLoader workers of lightly's pipeline")
    ap.add_argument("--time-to-knn", action="store_true", help="the CIFAR-10 run instead")
    ap.add_argument("--cifar10", default="", help="cifar10-jpg.tar.gz (folder loader)")
    ap.add_argument("--epochs", type=float, default=200)
    ap.add_argument("--target", type=float, default=LIGHTLY_KNN)
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="wall-time cap of the CIFAR-10 run; the schedule follows it (0 = none; "
                    "with --all: 4)")
    ap.add_argument("--eval-every", type=float, default=10, help="epochs between kNN evaluations")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override of the CIFAR-10 runs, as for python -m engine train")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: only to check this script where there is no GPU")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        emit(bench="gpu", skipped="no CUDA GPU on this machine: GPU figures not measured")
        return
    if args.all:
        args.methods = args.methods or ["simclr", "byol"]
        args.minutes = args.minutes or 4.0
        if not has_cifar10(args, "gpu_all"):
            return
    if (args.time_to_knn or args.parity) and not has_cifar10(args, "gpu_cifar10"):
        return
    dataset = load(args) if not args.time_to_knn or args.all else None
    flops: dict[str, int] = {}
    if args.all:
        try:
            for compile_ in (False, True):
                throughput(args, dataset, compile_, flops)
            part("gpu_parity", parity, args, dataset)
            part("gpu_time_to_knn", time_to_knn, args, dataset)
        finally:  # what was measured, also when a later part fails or is cut short
            table_rows()
    elif args.parity:
        parity(args, dataset)
    elif args.time_to_knn:
        time_to_knn(args)
    else:
        throughput(args, dataset, args.compile, flops)


if __name__ == "__main__":
    main()
