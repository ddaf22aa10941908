"""Augmentation throughput: our batched SimCLR two-view pipeline against its peers.

Peers, each doing SimCLR's small-image recipe (crop scale (0.2, 1), flip, colour jitter
0.4/0.4/0.4/0.1 with p 0.8, grayscale p 0.2, no blur) on the same uint8 batch:

- ``kornia``: ``kornia.augmentation`` (per-sample parameters, batched, any device);
- ``lightly``: ``lightly.transforms.SimCLRTransform`` on PIL images, one image at a time, as
  it runs inside each DataLoader worker (CPU only; workers multiply it by the cores given).

Measurements alternate between the pipelines, round after round, and report the median, so
the ratio holds on a shared, noisy machine. Images/s counts source images (two views each).
A peer that is not installed is skipped with a message. One JSON line per device::

    python bench/bench_augment.py                      # cpu, and cuda when available
    python bench/bench_augment.py --devices cpu --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split

import torch  # noqa: E402

from engine.augment import Augmenter, preset_views  # noqa: E402

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)  # CIFAR-10


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ours(preset: str, device: torch.device) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    aug = Augmenter(preset_views(preset), MEAN, STD)
    g = torch.Generator(device=device).manual_seed(0)
    return lambda x: aug.views(x, 2, g)


def kornia_simclr(size: int, device: torch.device) -> Callable | None:
    try:
        import kornia.augmentation as K
    except ImportError as e:
        print(f"kornia is not usable ({e}): skipped (pip install kornia)", file=sys.stderr)
        return None
    pipe = torch.nn.Sequential(
        K.RandomResizedCrop((size, size), scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.Normalize(torch.tensor(MEAN), torch.tensor(STD)),
    ).to(device)

    def run(x: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            xf = x.float().div_(255)  # kornia takes float images; the conversion is timed
            return [pipe(xf), pipe(xf)]

    return run


def lightly_simclr(size: int, x: torch.Tensor) -> Callable | None:
    try:
        from lightly.transforms import SimCLRTransform
    except ImportError as e:
        print(f"lightly is not usable ({e}): skipped (pip install lightly)", file=sys.stderr)
        return None
    from PIL import Image

    transform = SimCLRTransform(
        input_size=size,
        min_scale=0.2,
        cj_strength=0.5,
        gaussian_blur=0.0,
        normalize={"mean": list(MEAN), "std": list(STD)},
    )
    pil = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in x.cpu()]

    def run(_: torch.Tensor) -> list[torch.Tensor]:
        views = [transform(img) for img in pil]  # [[v0, v1], ...]
        return [torch.stack([v[0] for v in views]), torch.stack([v[1] for v in views])]

    return run


def measure(
    pipes: dict[str, Callable], x: torch.Tensor, rounds: int, iters: int, device: torch.device
) -> dict[str, float]:
    """Median images/s of each pipeline, measured alternately."""
    for fn in pipes.values():  # warm-up (allocator, kernels, lazy imports)
        fn(x)
        fn(x)
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in pipes}
    for _ in range(rounds):
        for name, fn in pipes.items():
            n = 1 if name == "lightly" else iters
            t0 = time.perf_counter()
            for _ in range(n):
                fn(x)
            _sync(device)
            times[name].append((time.perf_counter() - t0) / n)
    return {name: x.shape[0] / statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=10, help="batches per timed round")
    ap.add_argument("--devices", default="auto", help="comma list: cpu,cuda (auto: both if any)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument(
        "--presets",
        default="simclr,byol,fixmatch",
        help="our presets timed too (simclr is the one compared)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = (
        args.devices.split(",")
        if args.devices != "auto"
        else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    )
    for name in devices:
        device = torch.device(name)
        g = torch.Generator().manual_seed(0)
        x = torch.randint(
            0, 256, (args.batch, 3, args.size, args.size), generator=g, dtype=torch.uint8
        ).to(device)
        pipes: dict[str, Callable] = {"ours": ours("simclr", device)}
        peer = kornia_simclr(args.size, device)
        if peer is not None:
            pipes["kornia"] = peer
        if device.type == "cpu":
            peer = lightly_simclr(args.size, x)
            if peer is not None:
                pipes["lightly"] = peer
        for preset in args.presets.split(","):
            if preset and preset != "simclr":
                pipes[f"ours_{preset}"] = ours(preset, device)
        rates = measure(pipes, x, args.rounds, args.iters, device)
        row = {
            "bench": "augment_simclr_two_views",
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(),
            "batch": args.batch,
            "size": args.size,
            "torch": torch.__version__,
            **{f"{k}_img_s": round(v, 1) for k, v in rates.items()},
        }
        for peer_name in ("kornia", "lightly"):
            if peer_name in rates:
                row[f"ratio_vs_{peer_name}"] = round(rates["ours"] / rates[peer_name], 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
