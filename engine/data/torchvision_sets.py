"""Standard data sets through torchvision: CIFAR-10/100, STL-10, MNIST, Fashion-MNIST, SVHN.

Files are downloaded on first use into ``<data_dir>/<name>`` (torchvision's own layout below
that folder) and checked against torchvision's checksums. Arrays are taken from the data sets'
``.data`` attributes (no per-image ``__getitem__``) and returned at their native size;
:func:`engine.data.load_dataset` resizes and caches them.

Fashion-MNIST is read first from Debian's package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist/*-ubyte.gz``), so it needs no network where that is
installed. A download that fails (no network, a proxy, a truncated file) raises
:class:`DataError` saying where the files are expected and how to place them by hand.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from engine.config import DataConfig
from engine.data.base import DATASETS, DataError, Dataset, Split
from engine.data.loading import data_root

#: where Debian's dataset-fashion-mnist package installs the original files
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

T = TypeVar("T")

_DIGIT_NAMES = [str(i) for i in range(10)]


def _fetch(title: str, folder: Path, url: str, expected: str, make: Callable[[], T]) -> T:
    """Run ``make`` (which may download) and turn any failure into an actionable DataError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return make()
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001  (network, checksum, archive and parse errors alike)
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataError(
            f"Could not load {title}: {reason}. It is downloaded on first use into {folder}; "
            f"the download failed or the files there are incomplete. Without network access, "
            f"download {url} on another machine and place it so that {folder / expected} "
            f"exists, then load again."
        ) from e


def _hwc(array: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) numpy -> uint8 (N, C, H, W) tensor, contiguous."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def _gray(data: Any) -> torch.Tensor:
    """uint8 (N, H, W) tensor or array -> uint8 (N, 1, H, W) tensor."""
    if isinstance(data, torch.Tensor):
        return data.to(torch.uint8).unsqueeze(1).contiguous()
    return torch.from_numpy(np.array(data, dtype=np.uint8)).unsqueeze(1)


def _labels(values: Any) -> torch.Tensor:
    """Labels of any array-like -> int64 tensor (N,) (a copy, so read-only buffers are fine)."""
    if isinstance(values, torch.Tensor):
        return values.to(torch.int64).clone()
    return torch.from_numpy(np.array(values, dtype=np.int64).reshape(-1))


# ---- CIFAR -----------------------------------------------------------------------------------
@DATASETS.register("cifar10")
def load_cifar10(cfg: DataConfig) -> Dataset:
    """CIFAR-10: 50,000 + 10,000 RGB images, 32x32, 10 classes (Krizhevsky, 2009)."""
    from torchvision.datasets import CIFAR10

    folder = data_root(cfg) / "cifar10"
    train, test = _fetch(
        "CIFAR-10",
        folder,
        CIFAR10.url,
        "cifar-10-batches-py/data_batch_1",
        lambda: (CIFAR10(folder, train=True, download=True), CIFAR10(folder, train=False)),
    )
    return Dataset(
        name="cifar10",
        train=Split(_hwc(train.data), _labels(train.targets)),
        test=Split(_hwc(test.data), _labels(test.targets)),
        class_names=list(train.classes),
    )


@DATASETS.register("cifar100")
def load_cifar100(cfg: DataConfig) -> Dataset:
    """CIFAR-100: 100 fine classes; the 20 coarse classes become the ``superclass`` attribute."""
    from torchvision.datasets import CIFAR100

    folder = data_root(cfg) / "cifar100"

    def make() -> tuple[Any, Any, list[np.ndarray], list[str]]:
        train = CIFAR100(folder, train=True, download=True)
        test = CIFAR100(folder, train=False)
        base = folder / CIFAR100.base_folder
        coarse = []
        for name in ("train", "test"):  # torchvision keeps only the fine labels
            with open(base / name, "rb") as f:
                coarse.append(np.asarray(pickle.load(f, encoding="latin1")["coarse_labels"]))
        with open(base / "meta", "rb") as f:
            coarse_names = list(pickle.load(f, encoding="latin1")["coarse_label_names"])
        return train, test, coarse, coarse_names

    train, test, coarse, coarse_names = _fetch(
        "CIFAR-100", folder, CIFAR100.url, "cifar-100-python/train", make
    )
    return Dataset(
        name="cifar100",
        train=Split(_hwc(train.data), _labels(train.targets), {"superclass": _labels(coarse[0])}),
        test=Split(_hwc(test.data), _labels(test.targets), {"superclass": _labels(coarse[1])}),
        class_names=list(train.classes),
        attribute_names={"superclass": coarse_names},
    )


# ---- STL-10 ----------------------------------------------------------------------------------
def _read_stl_images(path: Path) -> torch.Tensor:
    """STL-10 ``*_X.bin``: uint8, each image 3 x 96 x 96 stored column-major -> (N, 3, 96, 96)."""
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3, 96, 96)
    return torch.from_numpy(raw).transpose(2, 3)  # a view; resize_images makes it contiguous


@DATASETS.register("stl10")
def load_stl10(cfg: DataConfig) -> Dataset:
    """STL-10: 5,000 train + 8,000 test labelled and 100,000 unlabelled RGB images, 96x96.

    The unlabelled split becomes ``Dataset.unlabelled`` (labels -1). torchvision downloads and
    verifies the files once; the test and unlabelled arrays are then read directly (same
    layout as torchvision's reader), which avoids re-hashing 2.6 GB for every split.
    """
    from torchvision.datasets import STL10

    folder = data_root(cfg) / "stl10"

    def make() -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        train = STL10(folder, split="train", download=True)
        base = folder / STL10.base_folder
        test_images = _read_stl_images(base / "test_X.bin")
        test_labels = torch.from_numpy(np.fromfile(base / "test_y.bin", dtype=np.uint8)) - 1
        unlabelled = _read_stl_images(base / "unlabeled_X.bin")
        return train, test_images, test_labels.to(torch.int64), unlabelled

    train, test_images, test_labels, unlabelled = _fetch(
        "STL-10", folder, STL10.url, "stl10_binary/train_X.bin", make
    )
    return Dataset(
        name="stl10",
        train=Split(torch.from_numpy(train.data), _labels(train.labels)),
        test=Split(test_images, test_labels),
        class_names=list(train.classes),
        unlabelled=Split(unlabelled, torch.full((unlabelled.shape[0],), -1, dtype=torch.int64)),
    )


# ---- MNIST family ----------------------------------------------------------------------------
@DATASETS.register("mnist")
def load_mnist(cfg: DataConfig) -> Dataset:
    """MNIST: 60,000 + 10,000 handwritten digits, 28x28 grayscale."""
    from torchvision.datasets import MNIST

    folder = data_root(cfg) / "mnist"
    train, test = _fetch(
        "MNIST",
        folder,
        MNIST.mirrors[0] + "train-images-idx3-ubyte.gz (and the other 3 files)",
        "MNIST/raw/train-images-idx3-ubyte (gunzipped)",
        lambda: (MNIST(folder, train=True, download=True), MNIST(folder, train=False)),
    )
    return Dataset(
        name="mnist",
        train=Split(_gray(train.data), _labels(train.targets)),
        test=Split(_gray(test.data), _labels(test.targets)),
        class_names=list(_DIGIT_NAMES),
    )


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), gzipped or not, as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(dims))} values")
    return data.reshape(tuple(dims))


_FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(cfg: DataConfig) -> Dataset:
    """Fashion-MNIST: 60,000 + 10,000 clothing images, 28x28 grayscale (Xiao et al., 2017).

    Read from Debian's ``/usr/share/datasets/fashion-mnist`` when all four files are there,
    otherwise downloaded through torchvision.
    """
    from torchvision.datasets import FashionMNIST

    names = list(FashionMNIST.classes)
    debian = {key: DEBIAN_FASHION_MNIST / file for key, file in _FASHION_FILES.items()}
    if all(path.is_file() for path in debian.values()):
        try:
            arrays = {key: read_idx(path) for key, path in debian.items()}
        except (OSError, EOFError) as e:
            raise DataError(f"could not read Fashion-MNIST from {DEBIAN_FASHION_MNIST}: {e}") from e
        return Dataset(
            name="fashion_mnist",
            train=Split(_gray(arrays["train_images"]), _labels(arrays["train_labels"])),
            test=Split(_gray(arrays["test_images"]), _labels(arrays["test_labels"])),
            class_names=names,
        )

    folder = data_root(cfg) / "fashion_mnist"
    train, test = _fetch(
        "Fashion-MNIST",
        folder,
        FashionMNIST.mirrors[0] + "train-images-idx3-ubyte.gz (and the other 3 files; or "
        "`apt-get install dataset-fashion-mnist`)",
        "FashionMNIST/raw/train-images-idx3-ubyte (gunzipped)",
        lambda: (
            FashionMNIST(folder, train=True, download=True),
            FashionMNIST(folder, train=False),
        ),
    )
    return Dataset(
        name="fashion_mnist",
        train=Split(_gray(train.data), _labels(train.targets)),
        test=Split(_gray(test.data), _labels(test.targets)),
        class_names=names,
    )


# ---- SVHN ------------------------------------------------------------------------------------
@DATASETS.register("svhn")
def load_svhn(cfg: DataConfig) -> Dataset:
    """SVHN: 73,257 + 26,032 house-number digits, 32x32 RGB (the ``extra`` split is not used)."""
    from torchvision.datasets import SVHN

    folder = data_root(cfg) / "svhn"
    train, test = _fetch(
        "SVHN",
        folder,
        SVHN.split_list["train"][0] + " and test_32x32.mat",
        "train_32x32.mat",
        lambda: (
            SVHN(folder, split="train", download=True),
            SVHN(folder, split="test", download=True),
        ),
    )
    return Dataset(
        name="svhn",
        train=Split(torch.from_numpy(np.ascontiguousarray(train.data)), _labels(train.labels)),
        test=Split(torch.from_numpy(np.ascontiguousarray(test.data)), _labels(test.labels)),
        class_names=list(_DIGIT_NAMES),
    )
