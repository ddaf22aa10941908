"""The training loop: a generator of events. No threads, no file I/O.

``Trainer(cfg).events(should_stop)`` yields small dicts (``start``, ``step``, ``eval``,
``diagnostics``, ``snapshot``, ``checkpoint``, ``finished``); whoever iterates decides what
to do with them (the CLI prints and records, the background runner records and publishes).
Pausing is simply not asking for the next event.

Performance notes: the whole train split sits on the training device as uint8 when it fits;
batches are indexed there and augmented there (per-sample parameters, one batched op per
augmentation). A split too large for the device stays in pinned host memory and is streamed,
each batch copied one step ahead (``engine.train.prefetch``). Weights are channels_last on CUDA
and the CPU; on CUDA also bf16 autocast, a fused optimiser, optional ``torch.compile``. The loss
is read back to the host only when a step event is emitted (at most a few times a second),
never every step. The first step comes before the step-0 evaluation (which runs on a copy of
the initial weights), so the loss chart starts at once.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import torch

from engine.augment import Augmenter, resolve_views
from engine.config import RunConfig, validate
from engine.data import Dataset, load_dataset
from engine.device import (
    autocast_dtype,
    configure_cpu_threads,
    configure_cuda,
    pick_device,
    resident_budget,
)
from engine.eval.collapse import collapse_alarm, diagnostics
from engine.eval.embed import embed_images, eval_mode
from engine.eval.knn import knn_top1
from engine.eval.linear_probe import linear_probe
from engine.methods import METHODS, Batch, Method, StepOutput, build_method
from engine.models import build_backbone
from engine.train.prefetch import PinnedGather, stream_batches

#: test images a reconstructing method (MIM) shows at each evaluation
RECONSTRUCTIONS = 8


class TrainingError(RuntimeError):
    """A run cannot go on; the message says why and what to try."""


def _channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), in [0, 1] units, on a sample."""
    sample = images[: min(len(images), 4096)].float() / 255.0
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return mean.tolist(), std.tolist()


class Trainer:
    """Owns the data (on the device), the method, the optimiser and the schedule of one run.

    ``memory_limit``: bytes the uint8 train split may take on the device to stay resident
    there (default: half a CUDA device's free memory; no limit on the CPU). A larger split is
    streamed from host memory instead.
    """

    def __init__(
        self, cfg: RunConfig, dataset: Dataset | None = None, memory_limit: int | None = None
    ) -> None:
        validate(cfg)
        self.cfg = cfg
        self.device = pick_device(cfg.train.device)
        if self.device.type == "cpu":
            configure_cpu_threads()
        elif self.device.type == "cuda":
            configure_cuda()
        self.amp_dtype = autocast_dtype(self.device, cfg.train.precision)
        self.dataset = dataset if dataset is not None else load_dataset(cfg.data)
        ds = self.dataset
        method_cls = METHODS.get(cfg.method.name)
        n_labelled = int((ds.train.labels >= 0).sum())
        if method_cls.needs_labels and n_labelled == 0:
            raise ValueError(
                f"{cfg.method.name} needs labels, but the train split of {ds.name!r} has none; "
                "pick a self-supervised method"
            )
        if len(ds.train) < 2:
            raise ValueError(f"the train split of {ds.name!r} has fewer than 2 images")

        torch.manual_seed(cfg.seed)
        backbone = build_backbone(cfg.model.backbone, ds.channels, ds.image_size, cfg.model.width)
        self.method = build_method(
            cfg.method.name, cfg.method.params, backbone, max(ds.num_classes, 1)
        ).to(self.device)
        self.trainable = any(p.requires_grad for p in self.method.parameters())
        if cfg.train.epochs > 0 and not any(p.requires_grad for p in backbone.parameters()):
            raise ValueError(
                f"backbone {cfg.model.backbone!r} has no parameters to train; "
                "use train.epochs=0 to evaluate it as a baseline"
            )
        if self.device.type in ("cuda", "cpu") and cfg.train.channels_last:
            # NHWC convolutions: tensor cores on CUDA; oneDNN's faster kernels on the CPU
            # (a small-CNN step 1.3x faster on 2 cores, BENCHMARKS.md)
            self.method = self.method.to(memory_format=torch.channels_last)

        mean, std = _channel_stats(ds.train.images)
        self.augment = Augmenter(resolve_views(cfg.augment), mean, std)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.cpu_generator = torch.Generator().manual_seed(cfg.seed)

        self.batch_size = min(cfg.train.batch_size, len(ds.train))
        self.steps_per_epoch = max(1, len(ds.train) // self.batch_size)
        self.total_steps = int(math.ceil(cfg.train.epochs * self.steps_per_epoch))
        self.images, self.resident = self._place(ds.train.images, memory_limit)
        self.gather = None if self.resident else PinnedGather(self.images, self.device)
        self.labels = ds.train.labels.to(self.device)
        self.labelled_index = torch.nonzero(ds.train.labels >= 0).flatten()
        self._eval_sets()
        self.optimizer = self._optimizer() if self.trainable and self.total_steps > 0 else None
        self.step_fn = self.method.training_step
        # The step-0 evaluation runs on this copy after the first step (see ``events``).
        self._initial = copy.deepcopy(self.method) if self.total_steps else None
        if cfg.train.compile and self.device.type == "cuda":
            self.method.backbone.compile()

    # -- set-up -------------------------------------------------------------------------------
    def _place(self, images: torch.Tensor, limit: int | None) -> tuple[torch.Tensor, bool]:
        """The uint8 train split on the device when it fits in ``limit`` bytes (default
        :func:`resident_budget`), else in host memory, pinned for CUDA, to be streamed."""
        if limit is None:
            limit = resident_budget(self.device)
        if limit is None or images.numel() * images.element_size() <= limit:
            return images.to(self.device), True
        if self.device.type == "cuda":
            images = images.pin_memory()
        return images, False

    def _eval_sets(self) -> None:
        """Fixed subsets for kNN (memory bank and queries), map snapshots and the probe batch."""
        e, ds = self.cfg.eval, self.dataset
        g = torch.Generator().manual_seed(self.cfg.seed + 1)
        train_perm = torch.randperm(len(ds.train), generator=g)
        test_perm = torch.randperm(len(ds.test), generator=g)
        n_bank = len(ds.train) if e.knn_train_size <= 0 else min(e.knn_train_size, len(ds.train))
        n_query = len(ds.test) if e.knn_test_size <= 0 else min(e.knn_test_size, len(ds.test))
        self.bank_index = train_perm[:n_bank].sort().values
        n_snap = min(max(e.snapshot_size, 0), len(ds.test))
        # Snapshot images are the first of the kNN queries, so one pass serves both.
        self.query_index = test_perm[: max(n_query, n_snap)].sort().values
        self.snapshot_index = self.query_index[
            torch.randperm(len(self.query_index), generator=g)[:n_snap].sort().values
        ]
        self.probe_index = train_perm[: min(e.probe_size, len(ds.train))]
        self._probe_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _optimizer(self) -> torch.optim.Optimizer:
        t = self.cfg.train
        self.base_lr = t.lr * self.batch_size / 256
        groups = []
        for group in self.method.param_groups():
            params = group["params"]
            extra = {k: v for k, v in group.items() if k != "params"}
            decay = [p for p in params if p.ndim > 1]
            no_decay = [p for p in params if p.ndim <= 1]
            for ps, wd in ((decay, t.weight_decay), (no_decay, 0.0)):
                if ps:
                    groups.append({"params": ps, "weight_decay": wd, **extra})
        fused = {"fused": True} if self.device.type == "cuda" else {}
        if t.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=self.base_lr, momentum=t.momentum, **fused)
        return torch.optim.AdamW(groups, lr=self.base_lr, **fused)

    def _lr_at(self, progress: float, step: int) -> float:
        """Linear warm-up over ``warmup_epochs``, then cosine decay to 0 at ``progress`` 1."""
        warmup = self.cfg.train.warmup_epochs * self.steps_per_epoch
        if step < warmup:
            return self.base_lr * (step + 1) / warmup
        return self.base_lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    def _amp(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(self, step: int, method: Method | None = None) -> Iterator[dict[str, Any]]:
        """kNN top-1 of ``h`` (and ``z``) on the fixed query set, and a map snapshot, of
        ``method`` (default: the one training)."""
        ds, e = self.dataset, self.cfg.eval
        method = self.method if method is None else method
        t0 = time.perf_counter()
        embed = lambda images: embed_images(  # noqa: E731
            method, images, self.augment.normalise, self.device, e.batch_size, self.amp_dtype
        )
        bank = embed(self.images[self.bank_index.to(self.images.device)])
        query = embed(ds.test.images[self.query_index])
        bank_labels = ds.train.labels[self.bank_index].numpy()
        query_labels = ds.test.labels[self.query_index].numpy()
        self._features = (bank["h"], bank_labels, query["h"], query_labels)
        result: dict[str, Any] = {"type": "eval", "step": step}
        if (bank_labels >= 0).any() and (query_labels >= 0).any():
            for key in ("h", "z"):
                if key in query:
                    suffix = "" if key == "h" else "_z"
                    result[f"knn_top1{suffix}"] = knn_top1(
                        bank[key], bank_labels, query[key], query_labels,
                        k=e.knn_k, temperature=e.knn_temperature,
                    )
        for attr, values in ds.test.attributes.items():
            result[f"knn_{attr}"] = knn_top1(
                bank["h"], ds.train.attributes[attr][self.bank_index].numpy(),
                query["h"], values[self.query_index].numpy(),
                k=e.knn_k, temperature=e.knn_temperature,
            )
        result["eval_seconds"] = time.perf_counter() - t0
        yield result
        if len(self.snapshot_index):
            pos = torch.searchsorted(self.query_index, self.snapshot_index).numpy()
            arrays = {k: v[pos] for k, v in query.items()}
            arrays["index"] = self.snapshot_index.numpy()
            arrays["labels"] = ds.test.labels[self.snapshot_index].numpy()
            for attr, values in ds.test.attributes.items():
                arrays[f"attr_{attr}"] = values[self.snapshot_index].numpy()
            pictures = self._reconstructions(method)
            if pictures is not None:
                arrays["reconstructions"] = pictures
            yield {"type": "snapshot", "step": step, "arrays": arrays}

    def _reconstructions(self, method: Method) -> Any:
        """uint8 (3, n, C, H, W) from ``method.reconstruct`` of the first snapshot images,
        the same hidden patches at every evaluation; None for methods that reconstruct
        nothing."""
        images = self.dataset.test.images[self.snapshot_index[:RECONSTRUCTIONS]]
        x = self.augment.normalise(images.to(self.device))
        with eval_mode(method), self._amp():
            out = method.reconstruct(x, torch.Generator(self.device).manual_seed(0))
        if out is None:
            return None
        return self.augment.denormalise(out.float().flatten(0, 1)).view(out.shape).cpu().numpy()

    def _probe_views(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe batch's two augmented views, (P, C, H, W) each: drawn once from a fixed
        seed and kept, so every probe sees the same images and pays no augmentation."""
        if self._probe_cache is None:
            x = self.images[self.probe_index.to(self.images.device)].to(self.device)
            g = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 2)
            self._probe_cache = (self.augment.view(x, 0, g), self.augment.view(x, 1, g))
        return self._probe_cache

    @torch.no_grad()
    def probe(self, step: int, method: Method | None = None) -> dict[str, Any]:
        """Collapse diagnostics on the fixed probe batch, two fixed augmented views, of
        ``method`` (default: the one training)."""
        method = self.method if method is None else method
        x0, x1 = self._probe_views()
        with eval_mode(method), self._amp():
            out0 = method.embed(x0)
            out1 = method.embed(x1)
        key = "z" if "z" in out0 else "h"
        as_np = lambda t: t.float().cpu().numpy()  # noqa: E731
        diag = diagnostics(as_np(out0["h"]), as_np(out0[key]), as_np(out1[key]))
        alarm = collapse_alarm(diag, self.cfg.method.name, step=step)
        return {"type": "diagnostics", "step": step, **diag, "alarm": alarm.__dict__}

    # -- the loop -----------------------------------------------------------------------------
    def _epoch_index(self) -> Iterator[torch.Tensor]:
        """The batch indices of each epoch, ``(steps_per_epoch, B)`` on the host: an epoch is a
        permutation; semi-supervised methods get a fixed fraction of every batch from the
        labelled images."""
        frac = self.method.labelled_fraction()
        n, b = len(self.dataset.train), self.batch_size
        while True:
            perm = torch.randperm(n, generator=self.cpu_generator)
            rows = []
            for s in range(self.steps_per_epoch):
                idx = perm[s * b : (s + 1) * b]
                if frac and len(self.labelled_index):
                    n_lab = max(1, int(round(frac * b)))
                    pick = torch.randint(
                        len(self.labelled_index), (n_lab,), generator=self.cpu_generator
                    )
                    idx = torch.cat([self.labelled_index[pick], idx[: b - n_lab]])
                rows.append(idx)
            yield torch.stack(rows)

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(idx, images[idx])`` for every step, the images on the device: indexed there (by
        indices on the device) when the split is resident, else streamed from host memory one
        batch ahead (indices on the host).

        A resident run copies one epoch's indices to the device at a time: a blocking
        host-to-device copy waits for all queued GPU work, so one per step would stop the host
        from queueing the next step's kernels while the GPU runs this one.
        """
        if self.gather is None:
            return self._resident_batches()
        return stream_batches(self.gather, (idx for block in self._epoch_index() for idx in block))

    def _resident_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for block in self._epoch_index():
            for idx in block.to(self.device):  # (B,) on the device
                yield idx, self.images[idx]

    def events(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[dict[str, Any]]:
        """Train, yielding events; ends with a ``finished`` event (status finished/stopped)."""
        cfg, e = self.cfg, self.cfg.eval
        start = time.perf_counter()
        yield {
            "type": "start",
            "device": str(self.device),
            "precision": str(self.amp_dtype or "fp32").replace("torch.", ""),
            "resident": self.resident,
            "batch_size": self.batch_size,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "parameters": sum(p.numel() for p in self.method.parameters()),
            "dataset": self.dataset.describe(),
        }
        last_eval: dict[str, Any] = {}
        if self._initial is None:  # nothing to train: evaluate the untrained model now
            last_eval = yield from self._evaluation(0)
        next_eval = math.inf  # set by the step-0 evaluation, after the first step

        step, status, reason = 0, "finished", "completed all epochs"
        train_seconds, images_seen = 0.0, 0
        loss_sum = torch.zeros((), device=self.device)
        loss_n, last_emit = 0, 0.0
        logs_sum: dict[str, torch.Tensor] = {}
        self.method.train()
        batches = self.batches()
        last_ckpt = time.perf_counter()
        while step < self.total_steps:
            if should_stop():
                status, reason = "stopped", "stopped by the user"
                break
            elapsed = time.perf_counter() - start
            if cfg.train.max_seconds and elapsed >= cfg.train.max_seconds:
                reason = f"time budget of {cfg.train.max_seconds:g} s reached"
                break
            t0 = time.perf_counter()
            progress = step / self.total_steps
            if cfg.train.max_seconds:
                progress = max(progress, elapsed / cfg.train.max_seconds)
            lr = self._lr_at(progress, step)
            idx, x = next(batches)
            out = self.train_step(idx, lr, (step + 1) / self.total_steps, x)
            step += 1
            images_seen += len(idx)
            loss_sum += out.loss.detach().float()
            for k, v in out.logs.items():
                logs_sum[k] = logs_sum.get(k, 0) + torch.as_tensor(v).detach().float()
            loss_n += 1
            now = time.perf_counter()
            train_seconds += now - t0
            if now - last_emit >= 0.25 or step == self.total_steps or step == 1:
                loss = float(loss_sum) / loss_n  # the one host sync, a few times a second
                if not math.isfinite(loss):
                    raise TrainingError(
                        f"the loss became {loss} at step {step}. Try a lower learning rate "
                        f"(train.lr, now {cfg.train.lr:g}), a higher temperature, "
                        "train.precision=fp32, or milder augmentations."
                    )
                yield {
                    "type": "step",
                    "step": step,
                    "epoch": step / self.steps_per_epoch,
                    "loss": loss,
                    "lr": lr,
                    "images_per_s": images_seen / max(train_seconds, 1e-9),
                    "elapsed": now - start,
                    "progress": min(1.0, max(step / self.total_steps,
                                   (now - start) / cfg.train.max_seconds
                                   if cfg.train.max_seconds else 0.0)),
                    **{k: float(v) / loss_n for k, v in logs_sum.items()},
                }
                loss_sum.zero_()
                loss_n, last_emit, logs_sum = 0, now, {}
            if self._initial is not None:  # the step-0 evaluation, once the loss chart has a point
                last_eval = yield from self._initial_evaluation()
                next_eval = time.perf_counter() + max(
                    e.every_seconds, 9 * last_eval["eval_seconds"]
                )
            if e.diagnostics_every_steps and step % e.diagnostics_every_steps == 0:
                yield self.probe(step)
            if time.perf_counter() >= next_eval or self._epoch_eval_due(step):
                last_eval = yield from self._evaluation(step)
                next_eval = time.perf_counter() + max(
                    e.every_seconds, 9 * last_eval["eval_seconds"]
                )
            every = cfg.train.checkpoint_every_seconds
            if every and time.perf_counter() - last_ckpt >= every:
                yield self.checkpoint(step)
                last_ckpt = time.perf_counter()

        if self._initial is not None:  # stopped before the first step
            last_eval = yield from self._initial_evaluation()
        if step and last_eval.get("step") != step:
            last_eval = yield from self._evaluation(step)
        if step:
            yield self.checkpoint(step)
        bank_y, query_y = self._features[1], self._features[3]
        if step and e.linear_probe and (bank_y >= 0).any() and (query_y >= 0).any():
            # SupCon's second stage, for every method: a linear head on the frozen encoder
            last_eval["linear_top1"] = linear_probe(*self._features)
        yield {
            "type": "finished",
            "status": status,
            "reason": reason,
            "steps": step,
            "epochs": step / self.steps_per_epoch,
            "images_per_s": images_seen / train_seconds if train_seconds else 0.0,
            "train_seconds": train_seconds,
            "elapsed": time.perf_counter() - start,
            "device": str(self.device),
            **{k: v for k, v in last_eval.items() if k.startswith(("knn_", "linear_"))},
        }

    def _evaluation(
        self, step: int, method: Method | None = None
    ) -> Generator[dict[str, Any], None, dict[str, Any]]:
        """Yield the events of :meth:`evaluate`; return its ``eval`` event."""
        result: dict[str, Any] = {}
        for ev in self.evaluate(step, method):
            if ev["type"] == "eval":
                result = ev
            yield ev
        return result

    def _initial_evaluation(self) -> Generator[dict[str, Any], None, dict[str, Any]]:
        """Evaluation and diagnostics of the initial weights (step 0), then drop their copy."""
        initial, self._initial = self._initial, None
        result = yield from self._evaluation(0, initial)
        if self.cfg.eval.diagnostics_every_steps:
            yield self.probe(0, initial)
        return result

    def train_step(
        self, idx: torch.Tensor, lr: float, progress: float, x: torch.Tensor
    ) -> StepOutput:
        """One optimiser step on the train images at ``idx`` (B,): augment, forward, backward.

        ``x``: those images, uint8 (B, C, H, W) on the device, as :meth:`batches` yields them.
        """
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr if group.get("fixed_lr") else lr
        y = self.labels[idx.to(self.device)]
        with self._amp():
            out = self.step_fn(Batch(x, y, self.augment, self.generator))
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.optimizer.step()
        self.method.on_step_end(progress)
        return out

    def _epoch_eval_due(self, step: int) -> bool:
        every = self.cfg.eval.every_epochs
        if not every:
            return False
        period = max(1, int(round(every * self.steps_per_epoch)))
        return step % period == 0

    def checkpoint(self, step: int) -> dict[str, Any]:
        state = {
            "step": step,
            "config": self.cfg.to_dict(),
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
        }
        return {"type": "checkpoint", "step": step, "state": state}

