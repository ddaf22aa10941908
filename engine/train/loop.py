"""The training loop: a generator of events. No threads, no file I/O.

``Trainer(cfg).events(should_stop)`` yields small dicts (``start``, ``step``, ``eval``,
``diagnostics``, ``snapshot``, ``checkpoint``, ``finished``); whoever iterates decides what
to do with them (the CLI prints and records, the background runner records and publishes).
Pausing is not asking for the next event (the run's clock stops meanwhile). ``should_stop``
is checked before every step and between embedding batches; a stopped run skips its final
evaluation. Bounds and progress: ``engine.train.schedule``; exact resume: ``Trainer.restore``
and ``engine.train.checkpoint``.

Performance notes: the whole train split sits on the training device as uint8 when it fits;
batches are indexed there and augmented there (per-sample parameters, one batched op per
augmentation). A split too large for the device stays in pinned host memory and is streamed,
each batch copied one step ahead (``engine.train.prefetch``). Weights are channels_last on CUDA
and the CPU; on CUDA also bf16 autocast, a fused optimiser, optional ``torch.compile``. The loss
is read back to the host only when a step event is emitted (``engine.train.loss_meter``),
never every step. The first step comes before the step-0 evaluation (which runs on a copy of
the initial weights), so the loss chart starts at once.

Several processes (torchrun, :mod:`engine.distributed`): each holds the whole uint8 split and
trains on its share of every global batch through DDP (:mod:`engine.train.data_parallel`);
rank 0 alone evaluates, and decides before each step whether all of them go on.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import torch

from engine import distributed
from engine.augment import Augmenter, resolve_views
from engine.config import RunConfig, validate
from engine.data import Dataset, load_dataset
from engine.device import (
    StepThreads,
    autocast_dtype,
    configure_cpu_threads,
    configure_cuda,
    pick_device,
)
from engine.methods import METHODS, Batch, Method, StepOutput, build_method
from engine.models import build_backbone
from engine.train import checkpoint as ckpt
from engine.train.accumulate import accumulated_step
from engine.train.cadence import Cadence
from engine.train.evaluator import Evaluator, Features, Stopped
from engine.train.events import CheckpointEvent, Event, FinishedEvent, StartEvent, StepEvent
from engine.train.loss_meter import LossMeter
from engine.train.optimizer import build_optimizer
from engine.train.order import DataOrder
from engine.train.prefetch import PinnedGather, device_batches, place
from engine.train.schedule import Clock, Schedule

Events = Generator[Event, None, dict[str, Any]]


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), in [0, 1] units, on a sample."""
    sample = images[: min(len(images), 4096)].float() / 255.0
    mean = sample.mean(dim=(0, 2, 3))
    std = sample.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return mean.tolist(), std.tolist()


class Trainer:
    """Owns the data (on the device), the method, the optimiser and the schedule of one run.

    ``memory_limit``: bytes the uint8 train split may take on the device to stay resident
    there (default: half a CUDA device's free memory; no limit on the CPU). A larger split is
    streamed from host memory instead. ``emit_every``: seconds between step events (0 = one
    event per step, each with that step's own loss).
    """

    def __init__(
        self,
        cfg: RunConfig,
        dataset: Dataset | None = None,
        memory_limit: int | None = None,
        *,
        emit_every: float = 0.25,
    ) -> None:
        validate(cfg)
        self.cfg = cfg
        self.emit_every = emit_every
        self.device = pick_device(cfg.train.device)
        if self.device.type == "cpu":
            configure_cpu_threads()
        elif self.device.type == "cuda":
            configure_cuda()
        self.amp_dtype = autocast_dtype(self.device, cfg.train.precision)
        self.dataset = dataset if dataset is not None else load_dataset(cfg.data)
        ds, t = self.dataset, cfg.train
        method_cls = METHODS.get(cfg.method.name)
        n_labelled = int((ds.train.labels >= 0).sum())
        if method_cls.needs_labels and n_labelled == 0:
            raise ValueError(
                f"{cfg.method.name} needs labels, but the train split of {ds.name!r} has none; "
                "pick a self-supervised method"
            )
        if len(ds.train) < 2:
            raise ValueError(f"the train split of {ds.name!r} has fewer than 2 images")

        self.dist = distributed.current()  # None on one process: no distributed code then
        self.main = self.dist is None or self.dist.main
        self.world = 1 if self.dist is None else self.dist.world
        self.batch_size = min(t.batch_size, len(ds.train))
        if self.dist is not None:  # the global batch, an equal share per process
            self.batch_size = self.dist.global_batch(self.batch_size)
        self.steps_per_epoch = max(1, len(ds.train) // self.batch_size)
        self.base_lr = t.lr * self.batch_size / 256
        self.schedule = Schedule.for_run(t.epochs, t.max_seconds, self.steps_per_epoch,
                                         t.warmup_epochs, self.base_lr)
        self.total_steps = self.schedule.total_steps  # math.inf for a time-only run

        torch.manual_seed(cfg.seed)
        backbone = build_backbone(cfg.model.backbone, ds.channels, ds.image_size, cfg.model.width)
        self.initialised_from = self._initial_weights(backbone)
        self.method = build_method(
            cfg.method.name, cfg.method.params, backbone, max(ds.num_classes, 1)
        ).to(self.device)
        self.trainable = any(p.requires_grad for p in self.method.parameters())
        if (self.schedule.trains and not self.method.freezes_backbone
                and not any(p.requires_grad for p in backbone.parameters())):
            raise ValueError(
                f"backbone {cfg.model.backbone!r} has no parameters to train; "
                "use train.epochs=0 with train.max_seconds=0 to evaluate it as a baseline"
            )
        if self.device.type in ("cuda", "cpu") and t.channels_last:
            # NHWC convolutions: tensor cores on CUDA; oneDNN's faster kernels on the CPU
            # (a small-CNN step 1.3x faster on 2 cores, BENCHMARKS.md)
            self.method = self.method.to(memory_format=torch.channels_last)
        self._step_fn = self.method.training_step
        if self.dist is not None:
            from engine.train.data_parallel import wrap

            self._step_fn = wrap(self.method, cfg)

        mean, std = channel_stats(ds.train.images)
        self.augment = Augmenter(resolve_views(cfg.augment), mean, std)
        self.generator = torch.Generator(device=self.device).manual_seed(
            distributed.rank_seed(cfg.seed))

        self.images, self.resident = place(ds.train.images, self.device, memory_limit)
        self.gather = None if self.resident else PinnedGather(self.images, self.device)
        self.labels = ds.train.labels.to(self.device)
        if self.batch_size // t.accumulate < 2:
            raise ValueError(f"train.accumulate: {t.accumulate} micro-batches of a batch of "
                             f"{self.batch_size} leave fewer than 2 images each")
        self.order = DataOrder(len(ds.train), self.batch_size, self.steps_per_epoch, cfg.seed,
                               torch.nonzero(ds.train.labels >= 0).flatten(),
                               self.method.labelled_fraction(),
                               ds.train.labels if cfg.data.sampler == "balanced" else None)
        self.evaluator = Evaluator(cfg, ds, self.images, self.augment, self.device,
                                   self.amp_dtype)
        trains = self.trainable and self.schedule.trains
        self.optimizer = (build_optimizer(self.method, t, self.base_lr, self.device) if trains
                          else None)
        # The step-0 evaluation runs on this copy after the first step (see ``events``).
        self._initial = copy.deepcopy(self.method) if self.schedule.trains else None
        if t.compile and self.device.type == "cuda":
            self.method.backbone.compile()

        # Where the run stands; a checkpoint saves all of it (``restore`` reads it back).
        self.step = 0
        self.clock = Clock()
        self.train_seconds, self.images_seen = 0.0, 0
        self.last_eval: dict[str, Any] = {}
        self.features: Features | None = None
        self.resumed_from: int | None = None

    # -- set-up -------------------------------------------------------------------------------
    def _initial_weights(self, backbone: torch.nn.Module) -> dict[str, Any] | None:
        """Load ``model.init_from`` (another run's encoder) or ``model.pretrained`` into the
        new ``backbone``; what was loaded, or None for a random start."""
        m = self.cfg.model
        if m.init_from:
            from engine.encoder.parent import load_parent

            return {"init_from": load_parent(backbone, m.init_from, m.backbone, m.width)}
        if m.pretrained:
            from engine.models.pretrained import load_pretrained

            return {"pretrained": load_pretrained(backbone, m.pretrained, m.backbone)}
        return None

    def _amp(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint(self) -> CheckpointEvent:
        """A ``checkpoint`` event whose ``state`` holds everything to continue exactly."""
        return CheckpointEvent(type="checkpoint", step=self.step, state=ckpt.capture(self))

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint dict (``engine.train.checkpoint.load``)."""
        ckpt.restore(self, state)

    # -- data order ---------------------------------------------------------------------------
    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(idx, images[idx])`` for every step, the images on the device
        (:func:`engine.train.prefetch.device_batches`); with several processes, this one's
        share of each global batch."""
        blocks = self.order.blocks()
        if self.dist is not None:
            blocks = map(self.dist.shard, blocks)
        return device_batches(self.images, self.gather, blocks, self.device)

    # -- the loop -----------------------------------------------------------------------------
    def events(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Event]:
        """Train, yielding events; ends with a ``finished`` event (status finished/stopped).
        The run's clock runs only while this generator works, not while its events are used."""
        self.clock.start()
        try:
            for event in self._events(should_stop):
                self.clock.stop()
                yield event
                self.clock.start()
        finally:
            self.clock.stop()

    def _events(self, should_stop: Callable[[], bool]) -> Iterator[Event]:
        cfg, sched = self.cfg, self.schedule
        total = sched.total_steps
        yield StartEvent(
            type="start",
            device=str(self.device),
            precision=str(self.amp_dtype or "fp32").replace("torch.", ""),
            resident=self.resident,
            batch_size=self.batch_size,
            steps_per_epoch=self.steps_per_epoch,
            total_steps=total if math.isfinite(total) else None,
            max_seconds=sched.max_seconds,
            resumed_from=self.resumed_from,
            initialised_from=self.initialised_from,
            parameters=sum(p.numel() for p in self.method.parameters()),
            dataset=self.dataset.describe(),
        )
        status, reason = "finished", "completed all epochs"
        if not sched.trains:  # nothing to train: evaluate the untrained model now
            yield from self._evaluation(0, should_stop)
        due = Cadence(cfg, self.steps_per_epoch, self.clock.seconds, self._initial is not None)
        meter = LossMeter(self.device, advice=(
            f"Try a lower learning rate (train.lr, now {cfg.train.lr:g}), a higher "
            "temperature, train.precision=fp32, or milder augmentations."))
        last_emit, lr, progress = 0.0, 0.0, 0.0
        self.method.train()
        batches = self.batches()
        threads = StepThreads(self.device.type == "cpu" and self.dist is None)
        try:
            while sched.trains:
                stop = should_stop()
                done = sched.done(self.step, self.clock.seconds)
                if self.dist is not None:  # rank 0 decides for every process
                    stop, done = self.dist.agree(stop, done)
                if stop:
                    status, reason = "stopped", "stopped by the user"
                    break
                if done:
                    reason = done
                    break
                t0 = time.perf_counter()
                progress = sched.progress(self.step, self.clock.seconds)
                lr = sched.lr(progress, self.step)
                idx, x = next(batches)
                out = self.train_step(idx, lr, progress, x)
                self.step += 1
                self.images_seen += len(idx) * self.world
                meter.add(out)
                now = time.perf_counter()
                self.train_seconds += now - t0
                threads.observe(now - t0)
                if now - last_emit >= self.emit_every or self.step in (1, total):
                    yield self._step_event(meter, lr, progress)
                    last_emit = now
                if self._initial is not None:  # step-0 evaluation, once the chart has a point
                    result = yield from self._initial_evaluation(should_stop)
                    due.evaluated(self.clock.seconds, result["eval_seconds"])
                if due.diagnostics_due(self.step) and self.main:
                    yield self.evaluator.probe(self.method, self.step)
                if due.evaluation_due(self.step, self.clock.seconds):
                    result = yield from self._evaluation(self.step, should_stop)
                    due.evaluated(self.clock.seconds, result["eval_seconds"])
                if due.checkpoint_due(self.step):
                    yield self.checkpoint()
                    due.checkpointed()
        except Stopped:  # raised on rank 0 only: it alone evaluates
            status, reason = "stopped", "stopped by the user"
            if self.dist is not None:
                self.dist.agree(True, None)  # the others wait for the next step's decision
        if meter.n:  # the last steps' loss, not yet shown
            yield self._step_event(meter, lr, progress)
        if status == "finished":
            try:
                yield from self._final_evaluation(should_stop)
            except Stopped:
                status, reason = "stopped", "stopped by the user"
        if self.step:
            yield self.checkpoint()
        finished = FinishedEvent(
            type="finished", status=status, reason=reason, steps=self.step,
            epochs=self.step / self.steps_per_epoch,
            progress=1.0 if status == "finished" else progress,
            images_per_s=self.images_seen / self.train_seconds if self.train_seconds else 0.0,
            train_seconds=self.train_seconds,
            elapsed=self.clock.seconds,
            device=str(self.device),
            threads=threads.threads if self.device.type == "cpu" else 0,
        )
        yield {**finished, **{k: v for k, v in self.last_eval.items()
                              if k.startswith(("knn_", "linear_", "classifier_"))}}

    def _step_event(self, meter: LossMeter, lr: float, progress: float) -> dict[str, Any]:
        """The :class:`StepEvent` of the steps since the last one: their mean loss and logs;
        ``lr`` and ``progress`` of the last of them."""
        loss, logs = meter.mean(self.step)
        event = StepEvent(
            type="step",
            step=self.step,
            epoch=self.step / self.steps_per_epoch,
            loss=loss,
            lr=lr,
            progress=progress,
            images_per_s=self.images_seen / max(self.train_seconds, 1e-9),
            elapsed=self.clock.seconds,
        )
        return {**event, **logs}

    def _evaluation(
        self, step: int, should_stop: Callable[[], bool], method: Method | None = None
    ) -> Events:
        """Evaluate ``method`` (default: the one training), yield its events, keep its
        features (for the final linear probe); return its ``eval`` event."""
        if not self.main:  # rank 0 evaluates for the run
            return {"eval_seconds": 0.0}
        evaluation = self.evaluator.evaluate(method or self.method, step, should_stop)
        self.features, self.last_eval = evaluation.features, evaluation.result
        yield from evaluation.events
        return evaluation.result

    def _initial_evaluation(self, should_stop: Callable[[], bool]) -> Events:
        """Evaluation and diagnostics of the initial weights (step 0), then drop their copy."""
        result = yield from self._evaluation(0, should_stop, self._initial)
        if self.cfg.eval.diagnostics_every_steps and self.main:
            yield self.evaluator.probe(self._initial, 0)
        self._initial = None
        return result

    def _final_evaluation(self, should_stop: Callable[[], bool]) -> Iterator[Event]:
        """The evaluation of the final weights (unless the last step had one) and the linear
        probe on its features."""
        if self._initial is not None and self.step:
            yield from self._initial_evaluation(should_stop)
        if self.step and (self.last_eval.get("step") != self.step or self.features is None):
            yield from self._evaluation(self.step, should_stop)
        if self.step and self.cfg.eval.linear_probe and self.features is not None:
            top1 = self.evaluator.linear_probe(self.features)
            if top1 is not None:
                self.last_eval["linear_top1"] = top1

    def train_step(
        self, idx: torch.Tensor, lr: float, progress: float, x: torch.Tensor
    ) -> StepOutput:
        """One optimiser step on the train images at ``idx`` (B,): augment, forward, backward.

        ``x``: those images, uint8 (B, C, H, W) on the device, as :meth:`batches` yields them;
        ``progress``: the run's progress at this step (``Schedule.progress``), given to the
        method's ``on_step_end``.
        """
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr if group.get("fixed_lr") else lr
        y = self.labels[idx.to(self.device)]
        if self.cfg.train.accumulate > 1:  # micro-batches, one optimiser step
            self.optimizer.zero_grad(set_to_none=True)
            out = accumulated_step(self._step_fn, Batch(x, y, self.augment, self.generator),
                                   self.cfg.train.accumulate, self._amp)
            self.optimizer.step()
            self.method.on_step_end(progress)
            return out
        with self._amp():
            out = self._step_fn(Batch(x, y, self.augment, self.generator))
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.optimizer.step()
        self.method.on_step_end(progress)
        return out

    def probe(self, step: int, method: Method | None = None) -> dict[str, Any]:
        """Collapse diagnostics of ``method`` (default: the one training) on the probe batch."""
        return self.evaluator.probe(method or self.method, step)
