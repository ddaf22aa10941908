"""Class-balanced batches, label noise and long-tailed train splits."""

import pytest
import torch

from engine.config import DataConfig, RunConfig
from engine.data import load_dataset
from engine.data.label_noise import flip_labels, long_tail_index
from engine.train.loop import Trainer
from engine.train.order import DataOrder


def imbalanced_labels() -> torch.Tensor:
    """Five classes of 200, 60, 20, 6 and 2 items, and 12 unlabelled (-1), shuffled."""
    counts = [200, 60, 20, 6, 2]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)]
                       + [torch.full((12,), -1)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]


@pytest.mark.parametrize("batch_size", [5, 16, 32])
def test_every_balanced_batch_holds_every_class(batch_size: int) -> None:
    labels = imbalanced_labels()
    steps = len(labels) // batch_size
    order = DataOrder(len(labels), batch_size, steps, seed=1, class_labels=labels)
    blocks = order.blocks()
    counts = torch.zeros(5)
    for _ in range(3):  # three epochs
        for idx in next(blocks):
            assert len(idx) == batch_size
            y = labels[idx]
            assert (y >= 0).all(), "unlabelled images stay out of balanced batches"
            per_class = torch.bincount(y, minlength=5)
            assert (per_class >= batch_size // 5).all() and per_class.max() <= -(-batch_size // 5)
            counts += per_class
    # the class of 2 images is oversampled as often as the class of 200
    assert counts.max() - counts.min() <= 3 * steps


def test_plain_order_misses_small_classes() -> None:
    """The contrast the option exists for: uniform batches of 16 often lack the 2-item class."""
    labels = imbalanced_labels()
    order = DataOrder(len(labels), 16, len(labels) // 16, seed=1)
    batches = next(order.blocks())
    assert sum(int((labels[idx] == 4).any()) for idx in batches) < len(batches) // 2


def test_balanced_order_resumes_exactly() -> None:
    labels = imbalanced_labels()
    a = DataOrder(len(labels), 16, 10, seed=3, class_labels=labels)
    blocks = a.blocks()
    first, second = next(blocks), next(blocks)
    b = DataOrder(len(labels), 16, 10, seed=3, class_labels=labels)
    b.restore(a.state_at(13), 13)
    assert torch.equal(next(b.blocks()), second[3:])
    assert not torch.equal(first, second)


def test_balanced_needs_room_for_every_class() -> None:
    with pytest.raises(ValueError, match="train.batch_size 4 is smaller than the 5 classes"):
        DataOrder(300, 4, 10, seed=0, class_labels=imbalanced_labels())


def test_balanced_batches_on_the_device_resident_path() -> None:
    """The trainer's own batches (the split resident on the training device, indexed there)
    hold every class, on a long-tailed shapes split (largest class 10x the smallest)."""
    cfg = RunConfig().with_overrides({
        "data.train_size": 800, "data.test_size": 64, "data.image_size": 16,
        "data.imbalance": 10, "data.sampler": "balanced", "train.batch_size": 32,
        "train.device": "cpu", "model.width": 8, "method.name": "supcon"})
    trainer = Trainer(cfg)
    assert trainer.resident
    counts = trainer.dataset.describe()["class_counts"]
    assert max(counts.values()) >= 9 * min(counts.values())
    labels = trainer.labels
    batches = trainer.batches()
    for _ in range(2 * trainer.steps_per_epoch):
        idx, x = next(batches)
        assert idx.device == trainer.device and torch.equal(x, trainer.images[idx])
        assert len(labels[idx].unique()) == 8


@pytest.mark.parametrize("fraction", [0.2, 0.4])
def test_label_noise_flips_exactly_the_stated_fraction(fraction: float) -> None:
    labels = imbalanced_labels()
    noisy = flip_labels(labels, fraction, 5, seed=7)
    labelled = labels >= 0
    flipped = noisy != labels
    assert int(flipped.sum()) == round(fraction * int(labelled.sum()))
    assert not flipped[~labelled].any(), "unlabelled images keep -1"
    assert ((noisy[labelled] >= 0) & (noisy[labelled] < 5)).all()
    assert torch.equal(flip_labels(labels, fraction, 5, seed=7), noisy)
    assert not torch.equal(flip_labels(labels, fraction, 5, seed=8), noisy)


def test_label_noise_never_touches_a_test_label() -> None:
    base = {"name": "shapes", "image_size": 16, "train_size": 500, "test_size": 200}
    clean = load_dataset(DataConfig(**base))
    noisy = load_dataset(DataConfig(**base, label_noise=0.3, noise_seed=2))
    assert torch.equal(noisy.test.labels, clean.test.labels)
    assert torch.equal(noisy.test.images, clean.test.images)
    assert torch.equal(noisy.train.images, clean.train.images)
    assert int((noisy.train.labels != clean.train.labels).sum()) == 150
    # the cached clean data set is not changed by the noisy load
    assert torch.equal(load_dataset(DataConfig(**base)).train.labels, clean.train.labels)


def test_long_tail_profile_and_clean_test_split() -> None:
    labels = torch.arange(400) % 4  # 100 per class
    kept = labels[long_tail_index(labels, 10.0, seed=0)]
    assert torch.bincount(kept).tolist() == [100, 46, 21, 10]
    base = {"name": "shapes", "image_size": 16, "train_size": 800, "test_size": 200}
    tail = load_dataset(DataConfig(**base, imbalance=10))
    clean = load_dataset(DataConfig(**base))
    assert len(tail.train) < len(clean.train)
    assert torch.equal(tail.test.labels, clean.test.labels)
