"""The GPU figures of the performance issue. Skips, with a message, where there is no CUDA GPU.

- ``throughput``: images per second of every registered method at batch 512 with ResNet-18
  (CIFAR stem) at 32 px, bf16 autocast,
  channels_last, fused optimiser: the full step (views made on the GPU) and the model-only step
  in alternation (``engine.bench``), the FLOPs of one step (``torch.utils.flop_counter``) and
  the fraction of the GPU's dense bf16 peak they reach.
- ``time_to_knn`` (``--time-to-knn``): SimCLR, ResNet-18 CIFAR stem, batch 512, on CIFAR-10
  read by the folder loader from ``cifar10-jpg.tar.gz``, kNN (k 200, T 0.1, all 50,000 train
  images as the bank, all 10,000 test images) every ``--eval-every`` epochs: the wall time at
  which kNN top-1 first reaches 0.848, lightly's published SimCLR figure (200 epochs, 87 min on
  one RTX A6000). ``--minutes`` caps the run's wall time; the cosine schedule then follows the
  time (``train.max_seconds``), so the run ends annealed: the best kNN reachable in that time.

    python bench/bench_gpu.py                                   # throughput, every method
    python bench/bench_gpu.py --methods simclr byol --steps 30
    python bench/bench_gpu.py --time-to-knn --cifar10 .devdata/cifar10-jpg.tar.gz --epochs 200
    python bench/bench_gpu.py --device cpu --methods simclr --steps 2 --batch 16   # check only

One JSON line per method / run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split
import torch  # noqa: E402

from engine.bench import interleave, step_timer  # noqa: E402
from engine.cli import parse_sets  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.methods import METHODS  # noqa: E402
from engine.train.loop import Trainer  # noqa: E402
from engine.train.runner import run_foreground  # noqa: E402
from engine.train.store import RunStore  # noqa: E402

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


def emit(**row: object) -> None:
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


def throughput(args: argparse.Namespace) -> None:
    data = {"data.train_size": 50_000, "data.test_size": 1000}
    if args.cifar10:
        data = {"data.name": "folder", "data.root": args.cifar10, "data.image_size": 32}
    t0 = time.perf_counter()
    dataset = load_dataset(RunConfig().with_overrides(data).data)
    emit(bench="gpu_data", name=dataset.name, train=len(dataset.train),
         load_s=round(time.perf_counter() - t0, 1))
    name = device_name(args.device)
    peak = bf16_peak(name, args.peak_tflops)
    for method in args.methods or METHODS.names():
        cfg = RunConfig().with_overrides({
            **data,
            "method.name": method,
            "model.backbone": "resnet18_cifar",
            "train.batch_size": args.batch,
            "train.compile": args.compile,
            "train.device": args.device,
        })
        try:
            throughput_row(args, cfg, dataset, name, peak)
        except Exception as exc:  # one method's failure must not hide the others' figures
            emit(bench="gpu_throughput", method=method, error=f"{type(exc).__name__}: {exc}")
        if args.device == "cuda":
            torch.cuda.empty_cache()


def throughput_row(
    args: argparse.Namespace, cfg: RunConfig, dataset: object, name: str, peak: float | None
) -> None:
    """Time one method's full and model-only steps and emit its row."""
    method = cfg.method.name
    trainer = Trainer(cfg, dataset)
    flops = step_flops(trainer)
    timers = {"full": step_timer(trainer), "model_only": step_timer(trainer, True)}
    samples = interleave(timers, args.rounds, max(1, args.steps // args.rounds), warmup=5)
    seconds = {k: statistics.median(v) for k, v in samples.items()}
    tflops = flops / seconds["full"] / 1e12
    emit(
        bench="gpu_throughput", device=name, method=method, backbone=cfg.model.backbone,
        batch=trainer.batch_size, precision=str(trainer.amp_dtype).replace("torch.", ""),
        compile=args.compile, resident=trainer.resident,
        images_per_s=round(trainer.batch_size / seconds["full"], 1),
        model_only_images_per_s=round(trainer.batch_size / seconds["model_only"], 1),
        fraction_of_model_only=round(seconds["model_only"] / seconds["full"], 3),
        gflops_per_step=round(flops / 1e9, 1), achieved_tflops=round(tflops, 1),
        fraction_of_bf16_peak=round(tflops / peak, 4) if peak else None,
        bf16_peak_tflops=peak,
    )


def time_to_knn(args: argparse.Namespace) -> None:
    if not args.cifar10 or not Path(args.cifar10).exists():
        emit(bench="gpu_time_to_knn", skipped=f"CIFAR-10 archive not found: {args.cifar10!r} "
             "(copy ../shared/data/cifar10-jpg.tar.gz and pass --cifar10)")
        return
    cfg = RunConfig().with_overrides({
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
        **parse_sets(args.set),
    })
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
        _, last = run_foreground(cfg, RunStore(Path(runs)), on_event=on_event)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="*", help="default: every registered method")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=40, help="timed steps per pipeline")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    ap.add_argument("--peak-tflops", type=float, default=0.0,
                    help="dense bf16 peak of this GPU (default: from a table of known GPUs)")
    ap.add_argument("--time-to-knn", action="store_true", help="the CIFAR-10 run instead")
    ap.add_argument("--cifar10", default="", help="cifar10-jpg.tar.gz (folder loader)")
    ap.add_argument("--epochs", type=float, default=200)
    ap.add_argument("--target", type=float, default=LIGHTLY_KNN)
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="wall-time cap of the CIFAR-10 run; the schedule follows it (0 = none)")
    ap.add_argument("--eval-every", type=float, default=10, help="epochs between kNN evaluations")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override of the CIFAR-10 run, as for python -m engine train")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: only to check this script where there is no GPU")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        emit(bench="gpu", skipped="no CUDA GPU on this machine: GPU figures not measured")
        return
    if args.time_to_knn:
        time_to_knn(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
