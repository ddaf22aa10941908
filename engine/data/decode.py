"""Decoding image files to uint8 tensors at their training size.

Every image is decoded to RGB (or kept grayscale), resized at decode time (shorter side to the
requested size, then a centre crop) so large photos never sit in memory at full size;
transparent pixels are composited onto white and EXIF orientation is applied. Small files are
decoded with torchvision's libjpeg/libpng bindings (about twice as fast as PIL for
thumbnails; small JPEGs in one batched call); large ones, and formats torchvision cannot read,
with PIL (JPEG draft mode decodes big photos at a fraction of their size), in a
thread pool.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import torch

from engine.data import progress
from engine.data.loading import resize_images

#: files up to this size go through torchvision's decoders, larger ones through PIL's draft mode
SMALL_FILE_BYTES = 64 * 1024


def _from_tensor(x: torch.Tensor) -> torch.Tensor:
    """Decoded (C, H, W) with C in 1..4, uint8 or uint16 -> uint8 (1 or 3, H, W) on white."""
    if x.dtype != torch.uint8:
        x = (x.to(torch.int32) >> 8).to(torch.uint8)  # 16-bit PNG
    if x.shape[0] in (2, 4):  # composite the colour onto white by its alpha
        alpha = x[-1:].float() / 255.0
        x = (x[:-1].float() * alpha + 255.0 * (1.0 - alpha)).round_().to(torch.uint8)
    return x


def decode_file(path: str | Path, size: int) -> torch.Tensor:
    """One image file as uint8 (C, H, W), C 1 or 3, turned upright and its modes handled as
    the loader does (16-bit scaled, alpha over white): at full size, or a JPEG reduced in the
    DCT domain to no less than ``size`` px. Raises OSError or PIL's errors when unreadable."""
    return _decode_pil(Path(path).read_bytes(), size)


def _decode_pil(data: bytes, size: int) -> torch.Tensor:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (size, size))  # JPEG: DCT-domain downscale, still >= size
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            values = np.asarray(im, dtype=np.float32)
            peak = float(values.max()) if values.size else 0.0
            scale = 255.0 / peak if peak > 255.0 else 1.0
            im = Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8))
        elif im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        if im.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
            gray = im.mode in ("LA", "La")
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, im.convert("RGBA")).convert("L" if gray else "RGB")
        elif im.mode not in ("L", "RGB"):
            im = im.convert("L" if im.mode == "1" else "RGB")
        array = np.array(im, dtype=np.uint8)
    x = torch.from_numpy(array)
    return x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)


_JPEG_MAGIC = b"\xff\xd8\xff"
#: " <_io.BytesIO object at 0x...>" in PIL's messages: nothing a person can use
_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")


@contextmanager
def _quiet_torchvision() -> Iterator[None]:
    """Silence torchvision 0.29's deprecation warning, which it repeats on every decode call."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*TorchVision are deprecated", category=DeprecationWarning
        )
        yield


@cache
def _tv_decoders() -> tuple | None:
    """torchvision's (decode_image, decode_jpeg, ImageReadMode), or None where unavailable.

    torchvision 0.29 deprecates its decoders in favour of TorchCodec; when they go, every
    file takes the PIL path (about half the speed on thumbnails) and nothing else changes.
    """
    try:
        from torchvision.io import ImageReadMode, decode_image, decode_jpeg
    except ImportError:
        return None
    return decode_image, decode_jpeg, ImageReadMode


def _decode_bytes(data: bytes, size: int, decoded: torch.Tensor | None = None) -> torch.Tensor:
    """Encoded image -> uint8 (1 or 3, size, size): shorter side to ``size``, centre crop.

    ``decoded`` is the (C, H, W) result of a batched JPEG decode when there was one.
    """
    x = None if decoded is None else _from_tensor(decoded)
    decoders = _tv_decoders()
    if x is None and decoders is not None and len(data) <= SMALL_FILE_BYTES:
        decode_image, _, ImageReadMode = decoders
        try:
            raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            y = decode_image(raw, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=True)
            if not (data.startswith(_JPEG_MAGIC) and y.shape[0] == 4):  # CMYK: leave to PIL
                x = _from_tensor(y)
        except (RuntimeError, ValueError):
            x = None  # a format torchvision does not read (BMP, TIFF, ...): try PIL
    if x is None:
        x = _decode_pil(data, size)
    if x.shape[0] not in (1, 3) or x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"unexpected decoded shape {tuple(x.shape)}")
    if x.shape[1] != size or x.shape[2] != size:
        x = resize_images(x.unsqueeze(0), size)[0]
    return x


def decode_image_file(path: str | Path, size: int) -> torch.Tensor:
    """Decode one image file to uint8 (1 or 3, size, size): shorter side, then centre crop."""
    with open(path, "rb") as f, _quiet_torchvision():
        return _decode_bytes(f.read(), size)


def _batch_jpeg(datas: list[bytes | None]) -> list[torch.Tensor | None]:
    """Decode the small JPEGs among ``datas`` in one call; ``None`` where not done.

    torchvision's list form of ``decode_jpeg`` saves most of the per-call overhead on
    thumbnails. If any of them is corrupt the whole batch falls back to one-by-one decoding.
    """
    result: list[torch.Tensor | None] = [None] * len(datas)
    decoders = _tv_decoders()
    if decoders is None:
        return result
    _, decode_jpeg, ImageReadMode = decoders
    index = [
        i
        for i, d in enumerate(datas)
        if d is not None and len(d) <= SMALL_FILE_BYTES and d.startswith(_JPEG_MAGIC)
    ]
    if not index:
        return result
    tensors = [torch.frombuffer(bytearray(datas[i]), dtype=torch.uint8) for i in index]
    try:
        decoded = decode_jpeg(tensors, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=True)
    except (RuntimeError, ValueError):
        return result
    for i, x in zip(index, decoded, strict=True):
        if x.shape[0] in (1, 3):
            result[i] = x
    return result


def decode_all(
    root: Path, files: list[str], size: int
) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """Decode ``files`` -> (uint8 (N, C, size, size) of the readable ones, ok mask, failures).

    C is 1 when every readable image is grayscale, else 3 (grayscale ones replicated).
    """
    n = len(files)
    base = str(root)
    out = torch.empty((n, 3, size, size), dtype=torch.uint8)
    ok = np.zeros(n, dtype=bool)
    gray = np.zeros(n, dtype=bool)
    failures: list[str | None] = [None] * n

    def fail(i: int, e: Exception | None) -> None:
        if e is None:
            failures[i] = f"{files[i]} (empty file)"
            return
        reason = " ".join(_OBJECT_REPR.sub("", str(e)).split())[:80] or type(e).__name__
        failures[i] = f"{files[i]} (cannot decode: {reason})"

    def work(start: int, stop: int) -> None:
        datas: list[bytes | None] = []
        for i in range(start, stop):
            try:
                with open(os.path.join(base, files[i]), "rb") as f:
                    datas.append(f.read())
            except OSError as e:
                fail(i, e)
                datas.append(None)
        decoded = _batch_jpeg(datas)
        for i, data, y in zip(range(start, stop), datas, decoded, strict=True):
            if data is None:
                continue
            if not data:
                fail(i, None)
                continue
            try:
                x = _decode_bytes(data, size, y)
            except Exception as e:  # noqa: BLE001  (any unreadable file is skipped, not fatal)
                fail(i, e)
                continue
            out[i] = x  # broadcasts a single channel to 3
            gray[i] = x.shape[0] == 1
            ok[i] = True

    chunk = 256
    ranges = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    sample = files[:: max(1, n // 64)]
    mean_bytes = np.mean([_size(root / f) for f in sample]) if sample else 0
    workers = min(8, os.cpu_count() or 1) if mean_bytes > SMALL_FILE_BYTES else 1
    done = 0
    with _quiet_torchvision(), ThreadPoolExecutor(workers) as pool:
        mapper = pool.map if workers > 1 and len(ranges) > 1 else map
        for (start, stop), _ in zip(ranges, mapper(lambda r: work(*r), ranges), strict=True):
            done += stop - start
            progress.tell("reading images", done, n)  # in this thread, chunk after chunk

    images = out[torch.from_numpy(ok)] if not ok.all() else out
    if ok.any() and gray[ok].all():
        images = images[:, :1].contiguous()
    return images, ok, [f for f in failures if f is not None]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
