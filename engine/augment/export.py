"""Take a pipeline home: as a preset JSON (read back by :func:`read_preset_json` and the app),
or as Python code for torchvision.transforms.v2 or kornia.augmentation.

The code is written from the per-op table in :mod:`engine.augment.export_table`; where a
library has no exact equivalent of an op, the line carries a ``# NOT EXACT: ...`` comment.

    views = preset_views("simclr")
    text = torchvision_code(views, size=32)   # a module defining view_0, view_1 and views
    exec(text, ns); ns["views"][0](pil_image)  # -> float (C, H, W) in [0, 1]

The torchvision code is per image (a Dataset transform: torchvision draws one set of parameters
per call); the kornia code is per batch, float ``(B, C, H, W)`` in ``[0, 1]``, every sample with
its own parameters, as here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from engine.augment.export_table import TABLE, Op, template_values
from engine.augment.ops import validate_view

HEADER = "# Exported from SSL Studio{what}: {n} view(s) for {size} px images."
PRESET_KEYS = ("title", "description", "source")


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"images have 1 or 3 channels, got {channels}")


def _validated(views: Sequence[Sequence[Mapping[str, Any]]]) -> list[list[Op]]:
    if isinstance(views, str | bytes) or not isinstance(views, Sequence) or not views:
        raise ValueError("a pipeline is a non-empty list of views, each a list of ops")
    out = []
    for i, view in enumerate(views):
        try:
            out.append(validate_view(view))
        except ValueError as e:
            raise ValueError(f"view {i}: {e}") from None
    return out


def preset_json(
    views: Sequence[Sequence[Mapping[str, Any]]],
    title: str = "",
    description: str = "",
    source: str = "",
) -> str:
    """A preset file's text (``assets/presets/augment/*.json`` layout), every default filled."""
    data = {"title": title or "My pipeline", "description": description, "source": source,
            "views": [[_jsonable(op) for op in view] for view in _validated(views)]}
    return json.dumps(data, indent=2) + "\n"


def read_preset_json(text: str | bytes) -> dict[str, Any]:
    """A preset's ``{"title", "description", "source", "views"}`` from a file's text.

    Raises ValueError naming what is wrong: not JSON, no ``views`` list, or a bad op (with its
    view number, op and parameter).
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"the preset is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError("a preset is a JSON object with a 'views' list")
    views = data.get("views")
    if not isinstance(views, list) or not views:
        raise ValueError("the preset needs a non-empty 'views' list (one op list per view)")
    info = {k: str(data.get(k, "")) for k in PRESET_KEYS}
    info["views"] = _validated(views)
    return info


def _jsonable(op: Op) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in op.items()}


COLOUR_ONLY = ("saturation", "hue")  # what this engine skips on 1-channel images


def _for_channels(op: Op, channels: int) -> Op | None:
    """The op as it acts on ``channels``-channel images: on one channel grayscale does nothing
    and colour jitter only brightness and contrast (as :mod:`engine.augment.colour`)."""
    if channels != 1:
        return op
    if op["op"] == "grayscale":
        return None
    if op["op"] == "color_jitter":
        return {**op, **dict.fromkeys(COLOUR_ONLY, 0.0)}
    return op


def _lines(view: list[Op], size: int, channels: int, line: Any) -> list[str]:
    out = []
    for op in view:
        if op["p"] <= 0:
            continue
        shown = _for_channels(op, channels)
        if shown is None:
            out.append(f"    # {op['op']}: nothing to do on 1-channel images")
        elif line is _kornia_line and channels == 1 and op["op"] == "randaugment":
            out.append("    # randaugment: NOT EXPORTED: kornia's RandAugment needs 3-channel "
                       "images (its colour ops fail on one channel)")
        else:
            out.append(line(shown, size))
    return out


def _tv_line(op: Op, size: int) -> str:
    row = TABLE[op["op"]]
    call = row.tv.format(**template_values(op, size))
    if row.tv_p == "apply" and op["p"] < 1.0:
        call = f"v2.RandomApply([{call}], p={op['p']})"
    note = row.tv_note(op)
    return f"    {call},{f'  # NOT EXACT: {note}' if note else ''}"


def _kornia_line(op: Op, size: int) -> str:
    row = TABLE[op["op"]]
    call = row.kornia.format(**template_values(op, size))
    note = row.kornia_note(op)
    return f"    {call},{f'  # NOT EXACT: {note}' if note else ''}"


def _normalise_note(mean: Sequence[float] | None, std: Sequence[float] | None) -> str:
    if mean is None or std is None:
        return "# The studio then normalises with the data set's per-channel mean and std."
    return f"# The studio then normalises with mean {list(mean)} and std {list(std)}."


def _preamble(
    views: Sequence[Sequence[Mapping[str, Any]]], size: int, name: str,
    mean: Sequence[float] | None, std: Sequence[float] | None, channels: int, how: str,
    imports: list[str],
) -> tuple[list, list[str]]:
    """The checked views and the first lines of an exported file: header, ``how`` it is
    applied, the normalisation note and ``imports``."""
    _check_channels(channels)
    checked = _validated(views)
    header = HEADER.format(what=f' (preset "{name}")' if name else "", n=len(checked), size=size)
    return checked, [header, how, _normalise_note(mean, std), *imports, ""]


def torchvision_code(
    views: Sequence[Sequence[Mapping[str, Any]]],
    size: int,
    name: str = "",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: int = 3,
) -> str:
    """Python source defining ``view_0 ... view_{V-1}`` and ``views``: torchvision.transforms.v2
    pipelines from a PIL image or a uint8 ``(C, H, W)`` tensor to float ``(C, H, W)`` in
    ``[0, 1]``. ``size``: the side of the (square) images, which sizes crops and blur kernels;
    ``channels``: 1 or 3 (on one channel, colour-only ops are left out, as here)."""
    checked, lines = _preamble(
        views, size, name, mean, std, channels,
        "# Per image, e.g. as a Dataset's transform: torchvision draws one set of parameters "
        "per call.",
        ["import torch", "from torchvision.transforms import v2"])
    for i, view in enumerate(checked):
        lines.append(f"view_{i} = v2.Compose([")
        lines.append("    v2.ToImage(),")
        lines.append("    v2.ToDtype(torch.float32, scale=True),")
        lines.extend(_lines(view, size, channels, _tv_line))
        lines.append("])")
        lines.append("")
    lines.append(f"views = [{', '.join(f'view_{i}' for i in range(len(checked)))}]")
    return "\n".join(lines) + "\n"


def kornia_code(
    views: Sequence[Sequence[Mapping[str, Any]]],
    size: int,
    name: str = "",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    channels: int = 3,
) -> str:
    """Python source defining ``view_0 ... view_{V-1}``, ``views`` and ``view(x, i)``: kornia
    pipelines on float ``(B, C, H, W)`` batches in ``[0, 1]`` with per-sample parameters;
    ``view`` clips its result to ``[0, 1]`` once, as this engine does. ``size``, ``channels``:
    as :func:`torchvision_code`."""
    checked, lines = _preamble(
        views, size, name, mean, std, channels,
        "# Per batch: float (B, C, H, W) in [0, 1], every sample with its own parameters.",
        ["import kornia.augmentation as K", "import kornia.augmentation.auto as KA",
         "import torch"])
    for i, view in enumerate(checked):
        lines.append(f"view_{i} = torch.nn.Sequential(")
        lines.extend(_lines(view, size, channels, _kornia_line))
        lines.append(")")
        lines.append("")
    lines.append(f"views = [{', '.join(f'view_{i}' for i in range(len(checked)))}]")
    lines += [
        "",
        "",
        "def view(x: torch.Tensor, i: int) -> torch.Tensor:",
        '    """View i of a float batch x (B, C, H, W) in [0, 1]."""',
        "    return views[i % len(views)](x).clamp(0.0, 1.0)",
    ]
    return "\n".join(lines) + "\n"
