"""Offline tests of the data loaders, the resize step and the decoded-array cache.

Every torchvision data set is exercised on tiny files written in its real on-disk format
(``tests/fixtures/data_files.py``); checksums are switched off with monkeypatch, and the network
is switched off for the whole module, so a download attempt fails fast instead of leaving.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import engine.data.torchvision_sets as tv_sets
from engine.config import DataConfig
from engine.data import DATASETS, DataError, Dataset, Split, load_dataset
from engine.data.loading import (
    DATA_DIR_ENV,
    cache_path,
    clear_memory_cache,
    data_root,
    keep_labels_per_class,
    resize_images,
    subsample_index,
)
from tests.fixtures import data_files as fx
from tests.fixtures.data_env import cfg, offline_and_fresh  # noqa: F401 (autouse fixture)


@pytest.fixture
def no_checksums(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept the fixture files although their md5 differs from the real releases."""
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.stl10 as stl10
    import torchvision.datasets.svhn as svhn
    import torchvision.datasets.utils as utils

    for module in (cifar, stl10, svhn, utils):
        monkeypatch.setattr(module, "check_integrity", lambda *a, **k: True)


def nchw(images_nhwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))


# ---- registry and data directory -------------------------------------------------------------
def test_every_loader_is_registered() -> None:
    names = set(DATASETS.names())
    expected = {"digits", "cifar10", "cifar100", "stl10", "mnist", "fashion_mnist", "svhn"}
    assert expected | {"folder", "shapes"} <= names


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known: .*cifar10.*digits"):
        load_dataset(cfg(tmp_path, name="imagenet-9000"))


def test_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert data_root(DataConfig()) == tmp_path / "data_cache"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert data_root(DataConfig()) == tmp_path / "env"
    assert data_root(DataConfig(data_dir=str(tmp_path / "explicit"))) == tmp_path / "explicit"


def test_env_var_places_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    load_dataset(DataConfig(name="digits", image_size=8))
    assert list((tmp_path / "env" / "cache").glob("digits-8px-*.pt"))


# ---- resize, subsample, labelled subset ------------------------------------------------------
def test_resize_images_square_and_dtype() -> None:
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    y = resize_images(x, 16, chunk=2)
    assert y.shape == (5, 3, 16, 16) and y.dtype == torch.uint8 and y.is_contiguous()
    assert resize_images(x, 32) is x or torch.equal(resize_images(x, 32), x)
    flat = torch.full((2, 1, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(resize_images(flat, 32), torch.full((2, 1, 32, 32), 77, dtype=torch.uint8))


def test_resize_images_centre_crops_non_square() -> None:
    x = torch.zeros((1, 1, 8, 16), dtype=torch.uint8)
    x[..., 4:12] = 200  # the centre square
    x[..., 12:] = 50
    assert torch.equal(resize_images(x, 8), torch.full((1, 1, 8, 8), 200, dtype=torch.uint8))
    big = torch.zeros((1, 3, 32, 64), dtype=torch.uint8)
    big[..., 16:48] = 180
    y = resize_images(big, 8)
    assert y.shape == (1, 3, 8, 8)
    assert (y[..., 1:-1].float() - 180).abs().max() < 2  # edges may blend a little


def test_subsample_index_is_proportional_and_deterministic() -> None:
    labels = np.repeat([0, 1, 2, -1], [600, 300, 60, 40])
    index = subsample_index(labels, 100, seed=3, split="train")
    assert len(index) == 100 and len(set(index.tolist())) == 100
    assert np.all(np.diff(index) > 0)
    counts = {c: int((labels[index] == c).sum()) for c in (0, 1, 2, -1)}
    assert counts == {0: 60, 1: 30, 2: 6, -1: 4}
    assert np.array_equal(index, subsample_index(labels, 100, seed=3, split="train"))
    assert not np.array_equal(index, subsample_index(labels, 100, seed=4, split="train"))
    assert len(subsample_index(labels, 0, 0, "test")) == len(labels)
    assert len(subsample_index(labels, 5000, 0, "test")) == len(labels)


def test_keep_labels_per_class() -> None:
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 2 + [-1] * 5)
    kept = keep_labels_per_class(labels, 3, seed=0)
    assert [(kept == c).sum().item() for c in (0, 1, 2)] == [3, 3, 2]
    assert ((kept == -1) | (kept == labels)).all()
    assert torch.equal(kept, keep_labels_per_class(labels, 3, seed=0))
    assert not torch.equal(kept, keep_labels_per_class(labels, 3, seed=1))
    assert torch.equal(keep_labels_per_class(labels, 0, seed=0), labels)


# ---- digits ----------------------------------------------------------------------------------
def test_digits_fixed_split_and_resize(tmp_path: Path) -> None:
    ds = load_dataset(cfg(tmp_path, name="digits", image_size=16))
    assert isinstance(ds, Dataset)
    assert (len(ds.train), len(ds.test)) == (1438, 359)
    assert ds.train.images.shape[1:] == (1, 16, 16) and ds.train.images.dtype == torch.uint8
    assert ds.class_names == [str(i) for i in range(10)]
    assert int(ds.train.images.max()) >= 250
    assert set(ds.test.labels.tolist()) == set(range(10))
    again = load_dataset(cfg(tmp_path / "other", name="digits", image_size=16, seed=5))
    assert torch.equal(again.test.labels, ds.test.labels)  # the split ignores cfg.seed


def test_labels_per_class_exact_and_deterministic(tmp_path: Path) -> None:
    c = cfg(tmp_path, name="digits", image_size=8, labels_per_class=4, seed=7)
    ds = load_dataset(c)
    counts = torch.bincount(ds.train.labels[ds.train.labels >= 0], minlength=10)
    assert counts.tolist() == [4] * 10
    assert (ds.train.labels == -1).sum() == len(ds.train) - 40
    assert (ds.test.labels >= 0).all()  # the test split keeps every label
    clear_memory_cache()
    assert torch.equal(load_dataset(c).train.labels, ds.train.labels)
    other = load_dataset(cfg(tmp_path, name="digits", image_size=8, labels_per_class=4, seed=8))
    assert not torch.equal(other.train.labels, ds.train.labels)
    full = load_dataset(cfg(tmp_path, name="digits", image_size=8, seed=7))
    assert (full.train.labels >= 0).all()  # the cached copy was not modified


def test_train_and_test_size_subsample(tmp_path: Path) -> None:
    ds = load_dataset(cfg(tmp_path, name="digits", image_size=8, train_size=200, test_size=50))
    assert (len(ds.train), len(ds.test)) == (200, 50)
    counts = torch.bincount(ds.train.labels, minlength=10)
    assert counts.min() >= 19 and counts.max() <= 21


# ---- cache -----------------------------------------------------------------------------------
@pytest.fixture
def counting_loader(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Register a data set named ``counting`` whose loader counts its calls."""
    calls: list[int] = []

    def load(c: DataConfig) -> Dataset:
        calls.append(1)
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (30, 3, 12, 20), dtype=torch.uint8, generator=g)
        labels = torch.arange(30) % 3
        return Dataset(
            name="counting",
            train=Split(images[:20], labels[:20], {"parity": labels[:20] % 2}),
            test=Split(images[20:], labels[20:], {"parity": labels[20:] % 2}),
            class_names=["a", "b", "c"],
            attribute_names={"parity": ["even", "odd"]},
            skipped=2,
            skipped_examples=["x.txt (not an image file)"],
        )

    monkeypatch.setitem(DATASETS._items, "counting", load)
    return calls


def test_second_load_hits_the_disk_cache(tmp_path: Path, counting_loader: list[int]) -> None:
    c = cfg(tmp_path, name="counting", image_size=10)
    first = load_dataset(c)
    assert len(counting_loader) == 1
    assert first.train.images.shape == (20, 3, 10, 10)  # non-square input, square output
    file = cache_path(c)
    assert file.parent == tmp_path / "data" / "cache" and file.is_file()
    assert file.name.startswith("counting-10px-")
    clear_memory_cache()
    second = load_dataset(c)
    assert len(counting_loader) == 1  # from disk
    assert torch.equal(second.train.images, first.train.images)
    assert torch.equal(second.test.attributes["parity"], first.test.attributes["parity"])
    assert second.attribute_names == first.attribute_names and second.skipped == 2
    assert second.skipped_examples == first.skipped_examples
    load_dataset(c)
    assert len(counting_loader) == 1  # from memory
    assert not [p for p in file.parent.iterdir() if p.suffix == ".tmp"]  # no temp files left


def test_cache_key_follows_the_settings(tmp_path: Path, counting_loader: list[int]) -> None:
    load_dataset(cfg(tmp_path, name="counting", image_size=10))
    load_dataset(cfg(tmp_path, name="counting", image_size=12))
    load_dataset(cfg(tmp_path, name="counting", image_size=12, train_size=10))
    assert len(counting_loader) == 3
    ds = load_dataset(cfg(tmp_path, name="counting", image_size=12, labels_per_class=2))
    assert len(counting_loader) == 3  # labels_per_class is applied after the cache
    assert (ds.train.labels >= 0).sum() == 6


def test_corrupt_cache_is_rebuilt(tmp_path: Path, counting_loader: list[int]) -> None:
    c = cfg(tmp_path, name="counting", image_size=10)
    load_dataset(c)
    cache_path(c).write_bytes(b"this is not a torch file")
    clear_memory_cache()
    ds = load_dataset(c)
    assert len(counting_loader) == 2 and len(ds.train) == 20
    clear_memory_cache()
    load_dataset(c)
    assert len(counting_loader) == 2  # the rebuilt file is good


def test_use_cache_false_reads_and_writes_nothing(
    tmp_path: Path, counting_loader: list[int]
) -> None:
    c = cfg(tmp_path, name="counting", image_size=10)
    load_dataset(c, use_cache=False)
    load_dataset(c, use_cache=False)
    assert len(counting_loader) == 2
    assert not cache_path(c).exists()


# ---- torchvision data sets -------------------------------------------------------------------
def test_cifar10(tmp_path: Path, no_checksums: None) -> None:
    written = fx.write_cifar10(tmp_path / "data" / "cifar10")
    ds = load_dataset(cfg(tmp_path, name="cifar10", image_size=32))
    assert ds.class_names == fx.CIFAR10_NAMES
    assert torch.equal(ds.train.images, nchw(written["train"][0]))
    assert ds.train.labels.tolist() == written["train"][1].tolist()
    assert torch.equal(ds.test.images, nchw(written["test"][0]))
    small = load_dataset(cfg(tmp_path, name="cifar10", image_size=16))
    assert small.train.images.shape == (20, 3, 16, 16)


def test_cifar100_keeps_superclasses(tmp_path: Path, no_checksums: None) -> None:
    written = fx.write_cifar100(tmp_path / "data" / "cifar100")
    ds = load_dataset(cfg(tmp_path, name="cifar100", image_size=32))
    assert len(ds.class_names) == 100 and ds.attribute_names["superclass"][3] == "coarse3"
    assert torch.equal(ds.train.images, nchw(written["train"][0]))
    assert ds.train.labels.tolist() == written["train"][1].tolist()
    assert ds.test.attributes["superclass"].tolist() == written["test"][2].tolist()
    assert "superclass" in ds.colourings()


def test_stl10_with_unlabelled_split(tmp_path: Path, no_checksums: None) -> None:
    written = fx.write_stl10(tmp_path / "data" / "stl10")
    ds = load_dataset(cfg(tmp_path, name="stl10", image_size=96))
    assert torch.equal(ds.train.images, torch.from_numpy(written["train"][0]))
    assert ds.train.labels.tolist() == written["train"][1].tolist()
    assert torch.equal(ds.test.images, torch.from_numpy(written["test"][0]))
    assert ds.test.labels.tolist() == written["test"][1].tolist()
    assert ds.unlabelled is not None and len(ds.unlabelled) == 5
    assert torch.equal(ds.unlabelled.images, torch.from_numpy(written["unlabeled"][0]))
    assert (ds.unlabelled.labels == -1).all()
    assert ds.class_names[2] == "car" and ds.describe()["unlabelled"] == 5
    # the direct reader agrees with torchvision's own
    from torchvision.datasets import STL10

    reference = STL10(tmp_path / "data" / "stl10", split="test")
    assert torch.equal(ds.test.images, torch.from_numpy(reference.data))
    small = load_dataset(cfg(tmp_path, name="stl10", image_size=32))
    assert small.unlabelled is not None and small.unlabelled.images.shape == (5, 3, 32, 32)


def test_mnist(tmp_path: Path) -> None:
    written = fx.write_mnist_raw(tmp_path / "data" / "mnist")
    ds = load_dataset(cfg(tmp_path, name="mnist", image_size=28))
    assert ds.train.images.shape == (20, 1, 28, 28)
    assert torch.equal(ds.train.images[:, 0], torch.from_numpy(written["train"][0]))
    assert ds.test.labels.tolist() == written["test"][1].tolist()
    assert ds.class_names == [str(i) for i in range(10)]


def test_fashion_mnist_from_debian_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    debian = tmp_path / "usr-share-datasets-fashion-mnist"
    written = fx.write_fashion_debian(debian)
    monkeypatch.setattr(tv_sets, "DEBIAN_FASHION_MNIST", debian)
    ds = load_dataset(cfg(tmp_path, name="fashion_mnist", image_size=28))
    assert torch.equal(ds.train.images[:, 0], torch.from_numpy(written["train"][0]))
    assert ds.train.labels.tolist() == written["train"][1].tolist()
    assert ds.class_names[0] == "T-shirt/top" and len(ds.class_names) == 10
    assert not (tmp_path / "data" / "fashion_mnist").exists()  # no download attempted


def test_fashion_mnist_falls_back_to_torchvision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tv_sets, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    written = fx.write_mnist_raw(tmp_path / "data" / "fashion_mnist", folder="FashionMNIST")
    ds = load_dataset(cfg(tmp_path, name="fashion_mnist", image_size=14))
    assert ds.train.images.shape == (20, 1, 14, 14)
    assert ds.test.labels.tolist() == written["test"][1].tolist()


def test_read_idx_rejects_truncated_files(tmp_path: Path) -> None:
    path = tmp_path / "x-idx3-ubyte.gz"
    fx.write_idx(path, np.zeros((3, 4, 4), dtype=np.uint8), gz=True)
    assert tv_sets.read_idx(path).shape == (3, 4, 4)
    raw = tmp_path / "cut-idx3-ubyte"
    fx.write_idx(raw, np.zeros((3, 4, 4), dtype=np.uint8))
    raw.write_bytes(raw.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        tv_sets.read_idx(raw)


def test_svhn(tmp_path: Path, no_checksums: None) -> None:
    written = fx.write_svhn(tmp_path / "data" / "svhn")
    ds = load_dataset(cfg(tmp_path, name="svhn", image_size=32))
    assert torch.equal(ds.train.images, torch.from_numpy(written["train"][0]))
    assert ds.train.labels.tolist() == written["train"][1].tolist()  # 10 became 0
    assert ds.test.labels[0] == 0 and len(ds.test) == 5


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar10", "cifar-10-batches-py/data_batch_1"),
        ("cifar100", "cifar-100-python/train"),
        ("stl10", "stl10_binary/train_X.bin"),
        ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
        ("fashion_mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
        ("svhn", "train_32x32.mat"),
    ],
)
def test_failed_download_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, expected: str
) -> None:
    monkeypatch.setattr(tv_sets, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(DataError) as info:
        load_dataset(cfg(tmp_path, name=name))
    message = str(info.value)
    folder = tmp_path / "data" / name
    assert str(folder / expected) in message  # where the files are expected
    assert "download" in message and "http" in message  # what failed and where to get it
    assert "place it" in message  # how to put them there by hand


def test_download_error_from_torchvision_becomes_data_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.cifar as cifar

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(cifar, "download_and_extract_archive", refuse)
    with pytest.raises(DataError, match="Network is unreachable.*cifar-10-python.tar.gz"):
        load_dataset(cfg(tmp_path, name="cifar10"))


@pytest.mark.skipif(
    not tv_sets.DEBIAN_FASHION_MNIST.joinpath("train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (/usr/share/datasets/fashion-mnist)",
)
def test_real_debian_fashion_mnist(tmp_path: Path) -> None:
    ds = load_dataset(cfg(tmp_path, name="fashion_mnist", image_size=28))
    assert (len(ds.train), len(ds.test)) == (60000, 10000)
    assert ds.channels == 1 and torch.bincount(ds.test.labels).tolist() == [1000] * 10
