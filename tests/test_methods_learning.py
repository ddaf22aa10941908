"""Learning, not just running: each method improves the representation on a 2-core CPU.

- Every self-supervised method, on ``shapes`` at 32 px with the small CNN, within 180 s of
  training: shape kNN top-1 at least 0.1 above the same backbone untrained (the run's own
  step-0 evaluation, i.e. ``train.epochs=0``).
- Masked image modelling also on the small ViT (MAE), held to +0.06 (it gains +0.08 to +0.10).
- Rotation prediction is measured on ``digits`` (orientation means little for shapes).
- With 10 labels per class on ``shapes``, FixMatch and SESEMI each beat cross-entropy trained
  on the same labelled images by at least 0.05 test accuracy within 5 minutes.

All run through the engine's foreground path (the one ``python -m engine train`` uses) and
are marked slow, except one fast representative. The commands and numbers are in
BENCHMARKS.md ("Methods on shapes (CPU)").
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.config import RunConfig
from engine.data import load_dataset
from engine.methods import METHODS
from engine.train.loop import Trainer
from engine.train.runner import run_foreground
from engine.train.store import RunDir, RunStore

SSL_BUDGET = 180.0  # seconds of wall time per run, evaluation included
SEMI_BUDGET = 300.0
MARGIN = 0.10
#: Masked image modelling on the small ViT (MAE) gains +0.081 to +0.098 in 180 s
#: (BENCHMARKS.md): short of MARGIN, held to this floor so that a regression still fails.
MAE_VIT_FLOOR = 0.06

#: The CPU recipe shared by the learning runs (BENCHMARKS.md, "Methods on shapes (CPU)"): the
#: small CNN at width 16 and batches of 128, so a 2-core CPU takes as many steps as it can;
#: a short warm-up; evaluation only at the start (the untrained baseline) and at the end, on a
#: 5000-image kNN bank, so the budget goes to training.
COMMON = {
    "data.name": "shapes",
    "data.image_size": 32,
    "model.backbone": "small_cnn",
    "model.width": 16,
    "train.device": "cpu",
    "train.batch_size": 128,
    "train.warmup_epochs": 0.1,
    "train.epochs": 1000,
    "eval.every_seconds": 100000,
    "eval.diagnostics_every_steps": 0,
    "eval.snapshot_size": 0,
    "eval.knn_train_size": 5000,
    "eval.knn_test_size": 1000,
}

#: Per-method settings of the benchmark (kept in step with BENCHMARKS.md).
SSL_RUNS: dict[str, dict] = {
    "simclr": {},
    "moco": {},
    "byol": {},  # batch 32, lr 4e-3: its own train defaults
    "simsiam": {},
    "barlow_twins": {},
    "vicreg": {},
    "margin": {"method.use_labels": False},
    "mim": {},  # SimMIM on the small CNN, warm-up 1 epoch (its own default)
}


def recipe(overrides: dict) -> dict:
    """Every ``KEY=VALUE`` of a learning run: the common CPU recipe, the method's own preset
    and train defaults (what the app's form starts from), then ``overrides``."""
    method = METHODS.get(overrides["method.name"])
    own = {f"train.{key}": value for key, value in method.train_defaults.items()}
    return {**COMMON, "augment.preset": method.default_preset, **own, **overrides}


def train(tmp_path: Path, overrides: dict, dataset=None) -> tuple[RunDir, dict, dict]:  # noqa: ANN001
    """One run through the foreground runner; returns (run, first eval, finished event)."""
    cfg = RunConfig().with_overrides(recipe(overrides))
    run, last = run_foreground(cfg, RunStore(tmp_path / "runs"), dataset=dataset)
    assert last["type"] == "finished", last.get("error")
    evals = run.metrics("eval")
    return run, evals[0], last


def classifier_accuracy(run: RunDir, dataset) -> float:  # noqa: ANN001
    """Test accuracy of a classifier method's own head, from the run's last checkpoint.

    ``dataset`` is the one the run trained on: the trainer rebuilt from it normalises images
    exactly as during training.
    """
    trainer = Trainer(run.config(), dataset)
    state = torch.load(run.checkpoint_path(), map_location="cpu", weights_only=False)
    method = trainer.method
    method.load_state_dict(state["method"])
    method.eval()
    correct = 0
    with torch.no_grad():
        for x, y in zip(
            dataset.test.images.split(512), dataset.test.labels.split(512), strict=True
        ):
            x = trainer.augment.normalise(x.to(trainer.device))
            logits = method.classifier(method.backbone(x)).cpu()
            correct += int((logits.argmax(1) == y).sum())
    return correct / len(dataset.test)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SSL_RUNS))
def test_self_supervised_method_learns_shapes(tmp_path: Path, name: str) -> None:
    overrides = {"method.name": name, "train.max_seconds": SSL_BUDGET, **SSL_RUNS[name]}
    _, untrained, done = train(tmp_path, overrides)
    gain = done["knn_top1"] - untrained["knn_top1"]
    assert gain >= MARGIN, (
        f"{name}: shape kNN {untrained['knn_top1']:.3f} untrained -> {done['knn_top1']:.3f} "
        f"after {done['steps']} steps ({done['images_per_s']:.0f} images/s)"
    )


@pytest.mark.slow
def test_mae_on_the_small_vit_learns_shapes(tmp_path: Path) -> None:
    overrides = {"method.name": "mim", "train.max_seconds": SSL_BUDGET,
                 "model.backbone": "vit_tiny", "model.width": 0,
                 "train.lr": 2e-3}  # MIM's own rate is the CNN form's
    _, untrained, done = train(tmp_path, overrides)
    gain = done["knn_top1"] - untrained["knn_top1"]
    assert gain >= MAE_VIT_FLOOR, f"MAE on vit_tiny: shape kNN gain {gain:+.3f}"


SUPERVISED_BUDGET = 60.0
#: Supervised runs: shape kNN of at least 0.9 after a fixed number of steps, each with its own
#: recipe (SupCon's brings a larger learning rate for its half as many steps). Counted in steps,
#: with a wall ceiling well above, so that a slower hour of the machine cannot fail them (bounded
#: by 60 s instead, SupCon reached 0.931 after 259 steps on an idle machine and 0.893 after 221 on
#: a busy one). On an idle 2-core CPU: SupCon 0.936 after 300 steps (59 s), cross-entropy 0.992
#: after 500 (47 s); at 250 steps each, 0.910 and 0.903.
SUPERVISED_STEPS: dict[str, int] = {
    "cross_entropy": 500,
    "supcon": 300,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SUPERVISED_STEPS))
def test_supervised_method_reaches_0_9_shape_knn_in_a_minute_of_steps(
    tmp_path: Path, name: str
) -> None:
    steps = SUPERVISED_STEPS[name]
    steps_per_epoch = 10_000 // 128  # shapes: 10,000 train images, batch 128, last one dropped
    overrides = {"method.name": name, "train.epochs": steps / steps_per_epoch,
                 "train.max_seconds": 5 * SUPERVISED_BUDGET}
    _, _, done = train(tmp_path, overrides)
    assert done["steps"] == steps, (name, done["steps"])
    assert done["knn_top1"] >= 0.9, (name, done["knn_top1"], steps)


@pytest.mark.slow
def test_triplet_batch_all_learns_where_batch_hard_collapses(tmp_path: Path) -> None:
    """Batch-all triplet mining (the default) lifts shape kNN by 0.46 in 60 s; batch-hard
    collapses every embedding to one point within 30 steps and gains 0.06 (BENCHMARKS.md)."""
    gains = {}
    for mining in ("all", "hard"):
        overrides = {"method.name": "triplet", "method.mining": mining,
                     "train.max_seconds": SUPERVISED_BUDGET}
        _, untrained, done = train(tmp_path, overrides)
        gains[mining] = done["knn_top1"] - untrained["knn_top1"]
    assert gains["all"] >= 0.3 and gains["all"] >= gains["hard"] + 0.2, gains


#: Rotation on scikit-learn's 8x8 digits starts at kNN 0.883 untrained (raw pixels: 0.978), so
#: a gain of MARGIN would need 0.983: held to 0.06 instead (measured +0.081 to +0.095 with
#: the MLP head at lr 2e-3 and 4e-3; a linear head makes h a rotation detector and kNN falls,
#: -0.022).
ROTATION_MARGIN = 0.06
ROTATION_RUN = {"method.name": "rotation", "data.name": "digits"}


@pytest.mark.slow
def test_rotation_prediction_learns_digits(tmp_path: Path) -> None:
    overrides = {**ROTATION_RUN, "train.max_seconds": SSL_BUDGET}
    _, untrained, done = train(tmp_path, overrides)
    assert done["knn_top1"] - untrained["knn_top1"] >= ROTATION_MARGIN, (untrained, done)


def test_fast_representative_margin_learns_shapes_quickly(tmp_path: Path) -> None:
    """The one learning check in the default suite: 120 steps (about 30 s on an idle 2-core
    CPU) of the margin contrastive loss with labels (class pairs) on a smaller shapes set must
    lift shape kNN clearly. Counted in steps, not seconds, so a busy machine is slower but
    reaches the same point."""
    overrides = {
        "method.name": "margin",
        "train.epochs": 8,  # 2000 images / batch 128 = 15 steps an epoch
        "train.max_seconds": 0,
        "data.train_size": 2000,
        "data.test_size": 500,
    }
    _, untrained, done = train(tmp_path, overrides)
    assert done["knn_top1"] - untrained["knn_top1"] >= MARGIN, (untrained, done)


@pytest.mark.slow
def test_semi_supervised_methods_beat_cross_entropy_on_10_labels_per_class(
    tmp_path: Path,
) -> None:
    semi = {"data.labels_per_class": 10, "train.max_seconds": SEMI_BUDGET}
    cfg = RunConfig().with_overrides({**COMMON, **semi})
    dataset = load_dataset(cfg.data)
    # The fair baseline: cross-entropy trained on exactly the labelled images, every step.
    labelled = torch.nonzero(dataset.train.labels >= 0).flatten()
    only_labelled = type(dataset)(**{**dataset.__dict__, "train": dataset.train.subset(labelled)})
    # 80 images make an epoch of one step: allow enough epochs to fill the same time budget.
    ce = {**semi, "method.name": "cross_entropy", "train.epochs": 100000}
    run, _, _ = train(tmp_path, ce, dataset=only_labelled)
    baseline = classifier_accuracy(run, only_labelled)
    results = {}
    for name in ("fixmatch", "sesemi"):
        run, _, _ = train(tmp_path, {**semi, "method.name": name}, dataset=dataset)
        results[name] = classifier_accuracy(run, dataset)
    for name, acc in results.items():
        assert acc >= baseline + 0.05, f"{name} {acc:.3f} vs cross-entropy {baseline:.3f}"
