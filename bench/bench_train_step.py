"""SimCLR training steps on the CPU: ours against lightly's standard recipe, side by side.

Three pipelines train the same network (a backbone from ``engine.models`` and the SimCLR
projector ``mlp(d, 512, 128)``) on the same images (the ``shapes`` train split, 32 px), with the
same batch size, temperature 0.5, AdamW and torch thread count, in one process:

- ``ours``: the engine's real step, ``Trainer.train_step`` (uint8 batch indexed in memory, two
  views made batched with per-sample parameters, forward, NT-Xent, backward, AdamW step);
- ``lightly``: lightly's standard recipe: a torch ``DataLoader`` over the images as PIL images
  with ``lightly.transforms.SimCLRTransform`` (input_size 32, scaled as our simclr preset: crop
  scale (0.2, 1), colour jitter strength 0.5, grey 0.2, no blur), ``lightly.loss.NTXentLoss``;
  timed with 0, 1 and 2 DataLoader workers (the best is the one compared);
- ``lightly_cl``: the same recipe with the network's weights in channels_last, the memory
  format our engine trains in (on the CPU too): lightly's standard recipe does not, so
  ``ratio_vs_lightly`` includes that choice and ``ratio_vs_lightly_channels_last`` isolates
  the data path;
- ``model_only``: our step on two ready views (no augmentation): the limit on this machine.

Each pipeline runs a few steps in turn, round after round (order reversed every other round),
and reports its median, so a shared machine's changing load falls on all alike. lightly's
workers are started afresh for each of its rounds (so none runs while the others are timed);
the clock starts once they have filled their prefetch queue (the steady state of an epoch).

    .venv/bin/python bench/bench_train_step.py                       # both backbones
    .venv/bin/python bench/bench_train_step.py --backbones small_cnn --rounds 3

One JSON line per backbone, with ``ratio_vs_lightly`` and ``fraction_of_model_only``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402, F401  (first: sets OpenMP's wait policy before torch loads)

# isort: split
import torch  # noqa: E402

from engine.bench import StepTimer, interleave, step_timer  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.data import Dataset, load_dataset  # noqa: E402
from engine.models import build_backbone  # noqa: E402
from engine.models.heads import mlp  # noqa: E402
from engine.train.loop import Trainer  # noqa: E402

#: backbone -> (batch size, steps per pipeline and round) on the CPU: a ResNet-18 step of 128
#: images takes seconds on 2 cores
CASES = {"small_cnn": (256, 3), "resnet18_cifar": (128, 1)}
GOALS = {"small_cnn": 1.5, "resnet18_cifar": 1.1}  # ours / lightly, from the issue
GOAL_MODEL_ONLY = 0.9  # ours / model-only


class PILImages(torch.utils.data.Dataset):
    """The uint8 images as PIL images, each passed through ``transform``: the usual input of
    a lightly / torchvision pipeline."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:  # noqa: ANN001
        from PIL import Image

        self.images = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):  # noqa: ANN204
        return self.transform(self.images[i]), self.labels[i]


def lightly_timer(
    trainer: Trainer, dataset: Dataset, backbone: str, workers: int, channels_last: bool
) -> tuple[StepTimer, int]:
    """lightly's SimCLR recipe on the same images, network, batch and optimiser settings;
    also the network's parameter count. ``channels_last``: the network's weights in the
    memory format our engine uses (lightly's recipe leaves them as they are)."""
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform

    transform = SimCLRTransform(
        input_size=dataset.image_size,
        min_scale=0.2,  # our simclr preset: crop scale (0.2, 1)
        cj_strength=0.5,  # brightness/contrast/saturation 0.4, hue 0.1
        gaussian_blur=0.0,
        normalize={"mean": trainer.augment.mean.tolist(), "std": trainer.augment.std.tolist()},
    )
    data = PILImages(dataset.train.images, dataset.train.labels, transform)
    loader = torch.utils.data.DataLoader(
        data, batch_size=trainer.batch_size, shuffle=True, drop_last=True, num_workers=workers
    )
    torch.manual_seed(trainer.cfg.seed)
    net = build_backbone(backbone, dataset.channels, dataset.image_size)
    # our projector (lightly's SimCLRProjectionHead adds a last BatchNorm): the same network
    model = torch.nn.Sequential(net, mlp(net.out_dim, 512, 128))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = NTXentLoss(temperature=0.5)
    t = trainer.cfg.train
    optimizer = torch.optim.AdamW(model.parameters(), lr=trainer.base_lr,
                                  weight_decay=t.weight_decay)
    model.train()

    def step(batch) -> None:  # noqa: ANN001
        (x0, x1), _ = batch
        loss = criterion(model(x0), model(x1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def run(n: int) -> float:
        it = iter(loader)  # fresh workers: none of them runs while the others are timed
        t0 = time.perf_counter()
        batch = next(it)
        if workers:  # let them fill their prefetch queue: the clock starts in steady state
            time.sleep(loader.prefetch_factor * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for _ in range(n):
            step(batch)
            batch = next(it)
        elapsed = time.perf_counter() - t0
        del it  # shuts the workers down
        return elapsed

    return run, sum(p.numel() for p in model.parameters())


def bench_backbone(
    dataset: Dataset,
    backbone: str,
    batch: int,
    workers: list[int],
    rounds: int,
    steps: int,
    threads: int = 0,
    overrides: dict | None = None,
) -> dict:
    cfg = RunConfig().with_overrides(
        {"model.backbone": backbone, "train.batch_size": batch, "train.epochs": 1,
         **(overrides or {})}
    )
    trainer = Trainer(cfg, dataset)  # sets torch's threads to the cores available
    if threads:
        torch.set_num_threads(threads)
    timers: dict[str, StepTimer] = {
        "ours": step_timer(trainer),
        "model_only": step_timer(trainer, model_only=True),
    }
    params = {"ours": sum(p.numel() for p in trainer.method.parameters())}
    for cl in (False, True):
        for w in workers:
            timers[f"lightly{'_cl' if cl else ''}_w{w}"], params["lightly"] = lightly_timer(
                trainer, dataset, backbone, w, cl
            )
    samples = interleave(timers, rounds, steps, warmup=1)
    rate = {k: batch / statistics.median(v) for k, v in samples.items()}
    best = max((k for k in rate if k.startswith("lightly_w")), key=rate.get)
    best_cl = max((k for k in rate if k.startswith("lightly_cl_w")), key=rate.get)
    row = {
        "bench": "train_step_simclr",
        "backbone": backbone,
        "batch": batch,
        "image_size": dataset.image_size,
        "threads": torch.get_num_threads(),
        "rounds": rounds,
        "steps_per_round": steps,
        "parameters": params,
        **{f"{k}_img_s": round(v, 1) for k, v in rate.items()},
        "lightly_best_workers": int(best.removeprefix("lightly_w")),
        "ratio_vs_lightly": round(rate["ours"] / rate[best], 3),
        "ratio_vs_lightly_channels_last": round(rate["ours"] / rate[best_cl], 3),
        "channels_last": trainer.cfg.train.channels_last,
        "fraction_of_model_only": round(rate["ours"] / rate["model_only"], 3),
        "goal_vs_lightly": GOALS.get(backbone),
        "goal_fraction_of_model_only": GOAL_MODEL_ONLY,
    }
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--batch", type=int, default=0, help="batch size for all (0 = per backbone)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=0,
                    help="steps per pipeline and round (0 = per backbone)")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                    help="lightly DataLoader workers tried on the first backbone; later "
                    "backbones use the best of them")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = every core)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override our run config, e.g. train.channels_last=false")
    args = ap.parse_args()
    dataset = load_dataset(RunConfig().data)  # shapes, 32 px
    workers = args.workers
    overrides = dict(item.split("=", 1) for item in args.set)
    for backbone in args.backbones:
        batch, steps = CASES[backbone]
        row = bench_backbone(dataset, backbone, args.batch or batch, workers, args.rounds,
                             args.steps or steps, args.threads, overrides)
        print(json.dumps(row), flush=True)
        workers = [row["lightly_best_workers"]]


if __name__ == "__main__":
    main()
