"""The procedural ``shapes`` data set: form, determinism, balance and the colour-shortcut design."""

from __future__ import annotations

import pytest
import torch

from engine.config import DataConfig
from engine.data.base import DATASETS, Dataset
from engine.data.shapes import (
    ATTRIBUTE_NAMES,
    CLASS_NAMES,
    SHAPES,
    _coverage,
    _scenes,
    _stream,
    generate_split,
    load_shapes,
)


@pytest.fixture(scope="module")
def default() -> Dataset:
    """The data set at its defaults: 10 000 train and 2 000 test images at 32 px."""
    return load_shapes(DataConfig())


def _small(seed: int = 0, size: int = 32, n_train: int = 160, n_test: int = 80) -> Dataset:
    cfg = DataConfig(image_size=size, seed=seed, train_size=n_train, test_size=n_test)
    return load_shapes(cfg)


def weighted_knn_top1(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 20,
    temperature: float = 0.1,
) -> float:
    """Top-1 accuracy of a weighted cosine kNN vote (weights exp(sim / T), Wu et al. 2018).

    train: (N, D) memory features, train_labels: (N,); test: (M, D), test_labels: (M,).
    """
    memory = torch.nn.functional.normalize(train.float(), dim=1)  # (N, D)
    classes = int(train_labels.max()) + 1
    correct = 0
    for start in range(0, len(test), 500):
        query = torch.nn.functional.normalize(test[start : start + 500].float(), dim=1)  # (b, D)
        sim, idx = (query @ memory.T).topk(k, dim=1)  # (b, k)
        votes = torch.zeros(len(query), classes)
        votes.scatter_add_(1, train_labels[idx], (sim / temperature).exp())
        correct += int((votes.argmax(1) == test_labels[start : start + 500]).sum())
    return correct / len(test)


def test_registered() -> None:
    assert "shapes" in DATASETS
    assert DATASETS.get("shapes") is load_shapes


def test_form_at_defaults(default: Dataset) -> None:
    ds = default
    assert ds.name == "shapes"
    assert ds.class_names == CLASS_NAMES and len(ds.class_names) >= 6
    assert set(ds.attribute_names) >= {"colour", "background", "size", "position", "rotation"}
    assert ds.attribute_names["colour"] == ["red", "orange", "yellow", "lime", "green", "teal"]
    for split, n in ((ds.train, 10000), (ds.test, 2000)):
        assert split.images.shape == (n, 3, 32, 32) and split.images.dtype == torch.uint8
        assert split.labels.shape == (n,) and split.labels.dtype == torch.int64
        assert int(split.labels.min()) == 0 and int(split.labels.max()) == len(CLASS_NAMES) - 1
        assert set(split.attributes) == set(ds.attribute_names)
        for name, values in split.attributes.items():
            assert values.shape == (n,) and values.dtype == torch.int64
            # every named bin occurs, and no index points past the names
            assert values.unique().tolist() == list(range(len(ds.attribute_names[name])))
    assert ds.describe()["class_counts"] == {c: 1250 for c in CLASS_NAMES}


def test_classes_and_colours_balanced(default: Dataset) -> None:
    for split in (default.train, default.test):
        n = len(split)
        for values, k in ((split.labels, len(CLASS_NAMES)), (split.attributes["colour"], 6)):
            counts = torch.bincount(values, minlength=k)
            assert int(counts.min()) >= n // k and int(counts.max()) <= n // k + 1


def test_balance_with_odd_sizes() -> None:
    ds = _small(n_train=101, n_test=13)
    counts = torch.bincount(ds.train.labels, minlength=len(CLASS_NAMES))
    assert counts.tolist() == [13] * 5 + [12] * 3  # 101 = 8 * 12 + 5


def test_same_seed_same_bytes() -> None:
    a, b = _small(seed=7), _small(seed=7)
    for sa, sb in ((a.train, b.train), (a.test, b.test)):
        assert sa.images.numpy().tobytes() == sb.images.numpy().tobytes()
        assert torch.equal(sa.labels, sb.labels)
        for name in sa.attributes:
            assert torch.equal(sa.attributes[name], sb.attributes[name])


def test_different_seed_different_images() -> None:
    a, b = _small(seed=0), _small(seed=1)
    assert not torch.equal(a.train.images, b.train.images)
    assert not torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(a.test.images, b.test.images)


def test_train_and_test_are_different_streams() -> None:
    ds = _small(n_train=200, n_test=200)
    assert not torch.equal(ds.train.labels, ds.test.labels)
    flat_train = ds.train.images.flatten(1).float()
    flat_test = ds.test.images.flatten(1).float()
    # no test image is a copy of a train image
    assert float(torch.cdist(flat_test, flat_train).min()) > 0


def test_negative_and_large_seeds() -> None:
    a, b = _small(seed=-3, n_train=16, n_test=8), _small(seed=2**40, n_train=16, n_test=8)
    assert len(a.train) == 16 and len(b.test) == 8
    assert not torch.equal(a.train.images, _small(seed=3, n_train=16, n_test=8).train.images)


@pytest.mark.parametrize("size", [16, 24, 48, 128])
def test_any_size_renders_the_same_scenes(size: int) -> None:
    ref = _small(n_train=40, n_test=16)
    ds = _small(size=size, n_train=40, n_test=16)
    assert ds.train.images.shape == (40, 3, size, size)
    assert ds.test.images.shape == (16, 3, size, size)
    assert torch.equal(ds.train.labels, ref.train.labels)
    for name in ref.train.attributes:
        assert torch.equal(ds.train.attributes[name], ref.train.attributes[name])


def test_requested_split_sizes() -> None:
    ds = _small(n_train=33, n_test=5)
    assert (len(ds.train), len(ds.test)) == (33, 5)
    empty = generate_split(0, 32, seed=0)
    assert empty.images.shape == (0, 3, 32, 32) and empty.labels.shape == (0,)
    with pytest.raises(ValueError, match="shapes"):
        generate_split(-1, 32, seed=0)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_each_shape_fits_its_unit_circle(name: str) -> None:
    """In its own frame every shape lies inside the unit circle and fills a fair part of it."""
    sdf = SHAPES[name]
    radius = torch.linspace(1.0, 1.5, 26)[:, None]
    angle = torch.linspace(0, 2 * torch.pi, 721)[None, :]
    outside = sdf(radius * angle.cos(), radius * angle.sin())  # (26, 721)
    assert float(outside.min()) >= -1e-5
    axis = torch.linspace(-1, 1, 201)
    d = sdf(axis[None, :], axis[:, None])  # (201, 201)
    disc_fraction = float((d < 0).float().mean()) / (torch.pi / 4)
    assert 0.3 < disc_fraction < 0.95, disc_fraction


def test_shapes_are_large_and_inside_the_image() -> None:
    """Every shape covers a good part of the image and its unit circle never leaves it."""
    scenes = _scenes(800, _stream(0, 0))
    for centre in (scenes["cx"], scenes["cy"]):
        assert bool((centre - scenes["r"] >= 0).all() and (centre + scenes["r"] <= 1).all())
    area = _coverage(scenes, 64).mean((1, 2))  # (n,) fraction of the image covered
    assert float(area.min()) > 0.04 and float(area.max()) < 0.6
    for c in range(len(CLASS_NAMES)):  # no shape class is much smaller than another on average
        mean_area = float(area[scenes["label"] == c].mean())
        assert 0.09 < mean_area < 0.3, (CLASS_NAMES[c], mean_area)


def test_pixels_see_colour_not_shape(default: Dataset) -> None:
    """The design criterion: raw pixels are a poor shape and a good colour classifier."""
    train = default.train.images.flatten(1)  # (N, 3*H*W)
    test = default.test.images.flatten(1)
    shape = weighted_knn_top1(train, default.train.labels, test, default.test.labels)
    colour = weighted_knn_top1(
        train, default.train.attributes["colour"], test, default.test.attributes["colour"]
    )
    assert shape <= 0.45, f"raw-pixel kNN finds the shape too easily: {shape:.3f}"
    assert colour >= 0.8, f"raw-pixel kNN misses the colour: {colour:.3f}"
    assert set(ATTRIBUTE_NAMES) == set(default.attribute_names)
