"""Offline tests of the image-folder loader: class folders, flat folders, train/test folders,
archives, bad roots; and (slow, when present) the shared CIFAR-10 JPEG archive."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest
import torch

import engine.data.decode as decode_mod
import engine.data.folder as folder_mod
from engine.data import DataError, Split, load_dataset
from engine.data.loading import clear_memory_cache
from tests.fixtures import data_files as fx
from tests.fixtures.data_env import cfg, offline_and_fresh  # noqa: F401 (autouse fixture)

SHARED_CIFAR_JPG = Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpg.tar.gz"


def assert_colours(split: Split, expected: dict[int, tuple[int, int, int]]) -> None:
    """Each image's mean colour is its label's colour (solid fixtures; JPEG may shift a bit)."""
    means = split.images.float().mean(dim=(2, 3))
    for label, mean in zip(split.labels.tolist(), means, strict=True):
        assert (mean - torch.tensor(expected[label], dtype=torch.float32)).abs().max() < 8


def test_a_skipped_file_s_reason_is_for_a_person(tmp_path: Path) -> None:
    root = fx.write_class_folder(tmp_path / "pets", per_class=5)
    (root / "red" / "empty.jpg").write_bytes(b"")
    (root / "blue" / "garbage.png").write_bytes(b"not a png at all")
    ds = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=16))
    reasons = dict(e.split(" (", 1) for e in ds.skipped_examples)
    assert reasons[str(Path("red/empty.jpg"))] == "empty file)"
    assert reasons[str(Path("blue/garbage.png"))].startswith("cannot decode: cannot identify")
    assert not any(" at 0x" in e for e in ds.skipped_examples), ds.skipped_examples


def test_a_look_at_a_folder_sorted_by_class_shows_every_class(tmp_path: Path) -> None:
    """The Data tab's grid and the augmentation preview take ``Split.spread``: a class at a
    time in turn, where the first images of a folder data set are all of its first class."""
    root = fx.write_class_folder(tmp_path / "pets", per_class=6)
    train = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=16)).train
    assert train.labels[:3].unique().numel() == 1  # the folder's order: one class first
    shown = train.spread(7)
    assert train.labels[shown].tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert shown.unique().numel() == 7
    assert sorted(train.spread(100).tolist()) == list(range(len(train)))  # all, once each


def test_class_folders_with_junk(tmp_path: Path) -> None:
    root = fx.write_class_folder(tmp_path / "pets", per_class=5)
    fx.write_corrupt(root / "red" / "broken.jpg")
    (root / "green" / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored silently
    ds = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=16))
    assert ds.class_names == ["blue", "green", "red"]
    assert ds.skipped == 2
    assert any("broken.jpg" in s for s in ds.skipped_examples)
    assert any("notes.txt" in s for s in ds.skipped_examples)
    assert (len(ds.train), len(ds.test)) == (12, 3)  # 80/20 per class
    assert torch.bincount(ds.test.labels).tolist() == [1, 1, 1]
    assert ds.train.images.shape[1:] == (3, 16, 16)
    colours = dict(enumerate(fx.CLASS_COLOURS.values()))
    assert_colours(ds.train, colours)  # images and labels stay aligned
    assert_colours(ds.test, colours)


def test_folder_split_is_stable_and_seed_free(tmp_path: Path) -> None:
    root = fx.write_class_folder(tmp_path / "pets", per_class=10)
    a = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=8, seed=0))
    b = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=8, seed=9))
    assert torch.equal(a.test.images, b.test.images)


def test_flat_folder_is_one_unlabelled_pool(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for i in range(10):
        fx.write_image(root / f"img{i}.png", (10 * i, 0, 0))
    ds = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=8))
    assert ds.class_names == [] and (len(ds.train), len(ds.test)) == (8, 2)
    assert (ds.train.labels == -1).all() and (ds.test.labels == -1).all()


def test_loose_images_beside_class_folders_are_unlabelled(tmp_path: Path) -> None:
    root = fx.write_class_folder(tmp_path / "pets", per_class=5, exts=(".png",))
    for i in range(10):
        fx.write_image(root / f"loose{i}.png", (128, 128, 128))
    ds = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=8))
    assert ds.class_names == ["blue", "green", "red"]
    assert (ds.train.labels == -1).sum() == 8 and (ds.test.labels == -1).sum() == 2


def test_train_test_and_unlabelled_folders(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for split, n in (("train", 4), ("test", 2)):
        for name, colour in fx.CLASS_COLOURS.items():
            for i in range(n):
                fx.write_image(root / split / name / f"{i}.png", colour)
    for i in range(3):
        fx.write_image(root / "unlabelled" / f"{i}.jpg", (128, 128, 128))
    ds = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=8))
    assert (len(ds.train), len(ds.test)) == (12, 6)
    assert ds.unlabelled is not None and len(ds.unlabelled) == 3
    assert (ds.unlabelled.labels == -1).all()
    assert torch.bincount(ds.test.labels).tolist() == [2, 2, 2]


def test_grayscale_folder_keeps_one_channel(tmp_path: Path) -> None:
    root = tmp_path / "gray"
    for cls in ("a", "b"):
        for i in range(3):
            fx.write_image(root / cls / f"{i}.png", 40 * i + 20, mode="L")
    ds = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=8))
    assert ds.channels == 1
    fx.write_image(root / "a" / "colour.png", (255, 0, 0))
    mixed = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=8))
    assert mixed.channels == 3  # the folder changed: the cache noticed
    images = torch.cat([mixed.train.images, mixed.test.images])
    coloured = (images[:, 0] != images[:, 1]).flatten(1).any(1)
    assert int(coloured.sum()) == 1  # the grayscale ones were replicated to 3 equal channels


def test_transparency_becomes_white_and_large_images_shrink(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    for i in range(3):
        fx.write_image(root / "clear" / f"{i}.png", (255, 0, 0, 0), mode="RGBA")
        fx.write_noise_jpeg(root / "photo" / f"{i}.jpg", seed=i)
    assert (root / "photo" / "0.jpg").stat().st_size > decode_mod.SMALL_FILE_BYTES
    ds = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=24))
    clear = torch.cat([s.images[s.labels == 0] for s in (ds.train, ds.test)])
    assert len(clear) == 3 and (clear == 255).all()
    photos = torch.cat([s.images[s.labels == 1] for s in (ds.train, ds.test)]).float()
    assert photos.shape == (3, 3, 24, 24)
    assert photos[..., :10].mean() < 60 and photos[..., 14:].mean() > 190  # dark left, light right


def test_decode_image_file_centre_crops(tmp_path: Path) -> None:
    from PIL import Image

    image = Image.new("RGB", (60, 20), (0, 0, 255))
    image.paste((255, 255, 0), (20, 0, 40, 20))  # the centre square is yellow
    path = tmp_path / "wide.png"
    image.save(path)
    x = decode_mod.decode_image_file(path, 10)
    assert x.shape == (3, 10, 10)
    assert x[:, :, 1:-1].float().sub(torch.tensor([255.0, 255, 0])[:, None, None]).abs().max() < 3


def test_pil_only_decoding_gives_the_same_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = fx.write_class_folder(tmp_path / "pets", per_class=5)
    fx.write_image(root / "red" / "alpha.png", (255, 0, 0, 0), mode="RGBA")
    fast = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=16))
    monkeypatch.setattr(decode_mod, "_tv_decoders", lambda: None)  # as if torchvision had none
    slow = load_dataset(
        cfg(tmp_path, name="folder", root=str(root), image_size=16), use_cache=False
    )
    assert torch.equal(fast.train.labels, slow.train.labels)
    assert (fast.train.images.float() - slow.train.images.float()).abs().max() <= 8


@pytest.mark.parametrize("problem", ["empty", "missing", "unset", "only-junk", "plain-file"])
def test_unusable_roots_raise_data_error(tmp_path: Path, problem: str) -> None:
    root = tmp_path / "root"
    if problem == "empty":
        root.mkdir()
        (root / "class_a").mkdir()
    elif problem == "only-junk":
        fx.write_corrupt(root / "a" / "bad.jpg")
        (root / "a" / "readme.md").write_text("hi")
    elif problem == "plain-file":
        root = tmp_path / "notes.txt"
        root.write_text("hello")
    match = {
        "empty": "no readable images",
        "missing": "does not exist",
        "unset": "data.root is empty",
        "only-junk": "skipped 2 file",
        "plain-file": "not a folder of images or a known archive",
    }[problem]
    with pytest.raises(DataError, match=match):
        load_dataset(cfg(tmp_path, name="folder", root="" if problem == "unset" else str(root)))


def test_one_image_per_class_has_no_test_split(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    for name, colour in fx.CLASS_COLOURS.items():
        fx.write_image(root / name / "only.png", colour)
    with pytest.raises(DataError, match="too few readable images"):
        load_dataset(cfg(tmp_path, name="folder", root=str(root)))


def test_folder_train_size_decodes_a_subset(tmp_path: Path) -> None:
    root = fx.write_class_folder(tmp_path / "pets", per_class=20, exts=(".png",))
    ds = load_dataset(cfg(tmp_path, name="folder", root=str(root), image_size=8, train_size=12))
    assert len(ds.train) == 12 and torch.bincount(ds.train.labels).tolist() == [4, 4, 4]


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip", ".tgz"])
def test_archive_root_is_extracted_once(tmp_path: Path, suffix: str) -> None:
    source = fx.write_class_folder(tmp_path / "src", per_class=5)
    archive = fx.make_archive(source, tmp_path / f"pets{suffix}", prefix="pets/")
    c = cfg(tmp_path, name="folder", root=str(archive), image_size=8)
    ds = load_dataset(c)
    assert ds.class_names == ["blue", "green", "red"] and len(ds.train) == 12
    target = tmp_path / "data" / "extracted" / "pets"
    assert (target / "pets" / "red").is_dir()  # the wrapper folder was looked through
    marker = target / ".source.json"
    stamp = marker.stat().st_mtime_ns
    clear_memory_cache()
    again = load_dataset(c, use_cache=False)
    assert marker.stat().st_mtime_ns == stamp  # not extracted a second time
    assert torch.equal(again.train.images, ds.train.images)


def test_tar_members_cannot_escape(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (4, 4), (9, 9, 9)).save(png, format="PNG")
    with tarfile.open(archive, "w:gz") as tf:
        for name in ("../escaped.png", "/abs.png", "a/ok.png", "b/ok.png"):
            info = tarfile.TarInfo(name)
            info.size = len(png.getvalue())
            tf.addfile(info, io.BytesIO(png.getvalue()))
        link = tarfile.TarInfo("a/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    target = folder_mod.extract_archive(archive, tmp_path / "data")
    assert not (tmp_path / "data" / "extracted" / "escaped.png").exists()
    assert not (tmp_path / "escaped.png").exists()
    assert sorted(p.name for p in target.rglob("*.png")) == ["ok.png", "ok.png"]
    assert not (target / "a" / "link.png").exists()


def test_changed_archive_is_extracted_again(tmp_path: Path) -> None:
    source = fx.write_class_folder(tmp_path / "src", per_class=3, exts=(".png",))
    archive = fx.make_archive(source, tmp_path / "pets.zip")
    first = folder_mod.extract_archive(archive, tmp_path / "data")
    assert not (first / "yellow").exists()
    fx.write_image(source / "yellow" / "0.png", (255, 255, 0))
    os.utime(archive, ns=(0, 0))
    fx.make_archive(source, archive)
    second = folder_mod.extract_archive(archive, tmp_path / "data")
    assert (second / "yellow" / "0.png").is_file()


# ---- the shared CIFAR-10 JPEG archive ----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(
    not SHARED_CIFAR_JPG.is_file(),
    reason=f"{SHARED_CIFAR_JPG} is absent (reference data outside the repository)",
)
def test_shared_cifar10_jpg_archive(tmp_path: Path) -> None:
    c = cfg(
        tmp_path,
        name="folder",
        root=str(SHARED_CIFAR_JPG),
        image_size=32,
        train_size=2000,
        test_size=500,
    )
    ds = load_dataset(c)
    assert ds.class_names == sorted(fx.CIFAR10_NAMES) and ds.skipped == 0
    assert (len(ds.train), len(ds.test)) == (2000, 500)
    assert torch.bincount(ds.train.labels).tolist() == [200] * 10
    assert torch.bincount(ds.test.labels).tolist() == [50] * 10
    assert ds.train.images.shape[1:] == (3, 32, 32)
    assert 80 < ds.train.images.float().mean() < 160  # natural images, not blank
    clear_memory_cache()
    start = time.perf_counter()
    cached = load_dataset(c)
    assert time.perf_counter() - start < 5
    assert torch.equal(cached.train.images, ds.train.images)
