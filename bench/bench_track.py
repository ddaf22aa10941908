"""What engine.track adds to a training step: a plain PyTorch SimCLR loop on the CPU (the
engine's small CNN, 32 px, batch 128) timed with and without the tracker, same process,
interleaved.

Both arms run the same loop, including the forward pass over a fixed set of ``--eval-images``
images every ``--every`` steps (the embeddings a user logs: their cost is the user's either
way). The tracked arm also calls ``run.log`` every step (loss and learning rate), and every
``--every`` steps ``run.views`` (the step's two projections) and ``run.embeddings`` (h, z,
labels and uint8 thumbnails of the fixed set). A tracked chunk ends with ``run.flush()``, so
the writer thread's work (kNN, snapshot files, collapse diagnostics) is charged to the chunk
that caused it, never to the untracked chunk after it.

Chunks of ``--steps`` steps alternate (which arm goes first alternates too), ``--repeats``
times each. Two clocks: wall time, and this process's CPU time (every thread, the writer's
included), which other work on a shared machine disturbs much less. Prints one JSON object a
chunk, then a summary: for each clock the median of the paired ratios (tracked time over
untracked time of the same repeat) and the overhead it means. Goal: under 3 %.

A busy machine blurs a few percent between chunks, so each part is also timed alone
(``components``, medians of ``--samples``): the calls in the loop (``run.log`` per step,
``run.views`` and ``run.embeddings`` per ``--every`` steps) and the writer's work for them (its
CPU time: kNN, snapshot file, diagnostics), as a share of ``--every`` training steps. Their sum,
``component_percent``, counts the writer's work as if it ran on the training thread; on a
second core it runs beside the step instead.

Usage: python bench/bench_track.py [--steps 50] [--repeats 8] [--every 50]
                                   [--eval-images 512] [--samples 20]
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
from torch import nn  # noqa: E402

from engine import track  # noqa: E402
from engine.losses.contrastive import info_nce  # noqa: E402
from engine.models import build_backbone  # noqa: E402


class Model(nn.Module):
    """small_cnn (width 16, h of 128) and a 2-layer projector to z of 64."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = build_backbone("small_cnn", 3, 32, 16)
        self.projector = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return h, self.projector(h)


class Loop:
    """The plain loop; ``run`` None: untracked."""

    def __init__(self, args: argparse.Namespace) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (2048, 3, 32, 32), generator=g, dtype=torch.uint8)
        self.labels = torch.randint(0, 10, (2048,), generator=g)
        self.eval_index = torch.arange(args.eval_images)
        self.model = Model()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.args, self.step = args, 0

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One SimCLR step on a random batch; the loss and the two projections (B, 64)."""
        idx = torch.randint(0, len(self.images), (self.args.batch,))
        x = self.images[idx].float().div_(255)
        _, z0 = self.model(x + 0.1 * torch.randn_like(x))
        _, z1 = self.model(x.flip(3) + 0.1 * torch.randn_like(x))
        loss = info_nce(z0, z1, 0.2)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return loss, z0, z1

    @torch.no_grad()
    def embed(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The fixed evaluation images (uint8) and their h (N, 128) and z (N, 64)."""
        self.model.eval()
        images = self.images[self.eval_index]
        h, z = self.model(images.float().div_(255))
        self.model.train()
        return images, h, z

    def chunk(self, run: track.Run | None) -> None:
        a = self.args
        for _ in range(a.steps):
            loss, z0, z1 = self.train_step()
            if run is not None:
                run.log(self.step, loss=loss, lr=self.opt.param_groups[0]["lr"])
            if self.step % a.every == 0:
                images, h, z = self.embed()
                if run is not None:
                    run.views(self.step, z0, z1)
                    run.embeddings(self.step, h=h, z=z, labels=self.labels[self.eval_index],
                                   images=images)
        if run is not None:
            run.flush()


def components(loop: Loop, run: track.Run, samples: int) -> dict[str, float]:
    """Each part of the tracker's cost, timed alone (medians of ``samples``, CPU time of this
    thread), as a share of ``every`` training steps: the calls in the loop, and the writer's
    work for them (done here on this thread; in a run the writer thread does it)."""
    from engine.track import measure

    a = loop.args
    med = statistics.median

    def cpu(fn) -> float:  # noqa: ANN001 — this thread's CPU time: others' load barely moves it
        t0 = time.thread_time()
        fn()
        return time.thread_time() - t0

    step_s = med(cpu(loop.train_step) for _ in range(samples))
    loss, z0, z1 = loop.train_step()
    images, h, z = loop.embed()
    labels = loop.labels[loop.eval_index]
    log_s = med(cpu(lambda: run.log(loop.step, loss=loss, lr=1e-3))
                for _ in range(samples * 10))
    views_s = med(cpu(lambda: run.views(loop.step, z0, z1)) for _ in range(samples))
    emb_s = med(cpu(lambda: run.embeddings(loop.step, h=h, z=z, labels=labels,
                                           images=images)) for _ in range(samples))
    run.flush()
    w = run.writer

    zs = [t.detach().clone() for t in (z0, z1)]
    views_work = med(cpu(lambda: w.recorder(measure.diagnostics_event(
        loop.step, "simclr", zs[0].numpy(), zs[1].numpy()))) for _ in range(samples))
    tensors = {"h": h.clone(), "z": z.clone(), "labels": labels.clone(),
               "images": images.clone(), "ids": None}
    meta = {"class_names": None, "attribute_names": None, "attributes": None}
    emb_work = med(cpu(lambda: w._embeddings(loop.step, tensors, meta))
                   for _ in range(max(3, samples // 4)))
    per_every = a.every * step_s
    in_loop = a.every * log_s + views_s + emb_s
    return {
        "step_s": step_s, "log_call_s": log_s, "views_call_s": views_s,
        "embeddings_call_s": emb_s, "views_writer_cpu_s": views_work,
        "embeddings_writer_cpu_s": emb_work,
        "in_loop_percent": round(100 * in_loop / per_every, 3),
        "writer_percent": round(100 * (views_work + emb_work) / per_every, 3),
        "component_percent": round(100 * (in_loop + views_work + emb_work) / per_every, 3),
    }


def timed(fn) -> tuple[float, float]:  # noqa: ANN001
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=50, help="steps per chunk")
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--every", type=int, default=50, help="views and embeddings every N steps")
    p.add_argument("--eval-images", type=int, default=512)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--samples", type=int, default=20, help="timings per component")
    args = p.parse_args()
    torch.manual_seed(0)
    loop = Loop(args)
    loop.chunk(None)  # warm-up: allocator, oneDNN kernels
    with tempfile.TemporaryDirectory() as runs, track.start(
            "bench", runs_dir=runs, batch_size=args.batch, class_names=[str(i) for i in range(10)]
    ) as run:
        loop.chunk(run)  # warm-up of the tracked path (first snapshot, imports)
        ratios: dict[str, list[float]] = {"wall": [], "cpu": []}
        for r in range(args.repeats):
            order = [None, run] if r % 2 == 0 else [run, None]
            times = {}
            for arm in order:
                name = "untracked" if arm is None else "tracked"
                wall, cpu = timed(lambda a=arm: loop.chunk(a))
                times[name] = (wall, cpu)
                print(json.dumps({"repeat": r, "arm": name, "steps": args.steps,
                                  "wall_s": round(wall, 4), "cpu_s": round(cpu, 4)}))
            ratios["wall"].append(times["tracked"][0] / times["untracked"][0])
            ratios["cpu"].append(times["tracked"][1] / times["untracked"][1])
        parts = components(loop, run, args.samples)
        dropped = run.dropped
    summary = {
        "steps_per_chunk": args.steps, "repeats": args.repeats, "every": args.every,
        "eval_images": args.eval_images, "batch": args.batch,
        "threads": torch.get_num_threads(), "dropped": dropped,
        **{f"{clock}_ratio_median": round(statistics.median(v), 4) for clock, v in ratios.items()},
        **{f"{clock}_overhead_percent": round(100 * (statistics.median(v) - 1), 2)
           for clock, v in ratios.items()},
        **{f"{clock}_ratios": [round(x, 4) for x in v] for clock, v in ratios.items()},
        "components": parts,
    }
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
