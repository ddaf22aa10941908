"""The encoder you trained, taken away: a folder anyone can load it from.

    <out>/
        encoder_state_dict.pt   the backbone's plain ``state_dict`` (torch.save)
        encoder.json            how to rebuild it: backbone name, channels, image size, width
        load_encoder.py         ``load_encoder(folder)``: the backbone with those weights
                                (needs this project's ``engine`` package on the path)
        encoder.torchscript.pt  the same backbone as TorchScript: ``torch.jit.load``, no code
        encoder.onnx            where the backbone exports cleanly and ``onnx`` is installed
        preprocessing.json      what the encoder expects: size, channels, mean and std
        export.json             what was written, and why anything was not (ONNX)

Every file takes normalised float32 images (N, C, H, W) and gives ``h`` (N, D), the backbone
feature a downstream task uses (not the projection ``z`` the loss saw).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from engine.encoder.load import PREPROCESSING, TrainedEncoder, write_preprocessing
from engine.train.store import atomic_write_json

LOADER = '''"""Load the encoder exported beside this file: ``load_encoder(folder)`` returns the
backbone (an nn.Module in eval mode) with its trained weights. Needs SSL Studio's ``engine``
package on the path (``pip install -r requirements.txt`` in its folder, then
``PYTHONPATH=<that folder>``).
Inputs: float32 (N, C, H, W) normalised as preprocessing.json says; output: h (N, D)."""

import contextlib
import io
import json
import warnings
from pathlib import Path

import torch


def load_encoder(folder: str | Path = Path(__file__).parent) -> torch.nn.Module:
    from engine.models import build_backbone

    folder = Path(folder)
    spec = json.loads((folder / "encoder.json").read_text())
    model = build_backbone(spec["backbone"], spec["channels"], spec["image_size"],
                           spec["width"])
    state = torch.load(folder / "encoder_state_dict.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()
'''


def load_exported(folder: str | Path) -> torch.nn.Module:
    """The backbone of an export folder (``encoder.json`` and ``encoder_state_dict.pt``), in
    eval mode on the CPU: what the folder's ``load_encoder.py`` does."""
    from engine.models import build_backbone

    folder = Path(folder)
    try:
        spec = json.loads((folder / "encoder.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder} is not an exported encoder ({exc})") from None
    model = build_backbone(spec["backbone"], spec["channels"], spec["image_size"], spec["width"])
    state = torch.load(folder / "encoder_state_dict.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def export_encoder(enc: TrainedEncoder, out: str | Path, onnx: bool = True) -> dict[str, Any]:
    """Write the export folder (see the module docstring); returns what ``export.json`` says:
    ``files`` written and ``onnx`` (the file, or why there is none)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    backbone = enc.backbone.eval()
    p = enc.preprocessing
    state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    torch.save(state, out / "encoder_state_dict.pt")
    atomic_write_json(out / "encoder.json", {
        "backbone": enc.cfg.model.backbone, "channels": p["channels"],
        "image_size": p["image_size"], "width": enc.cfg.model.width,
        "feature_dim": p.get("feature_dim"), "run": enc.run.id, "step": enc.step,
        "method": enc.cfg.method.name})
    (out / "load_encoder.py").write_text(LOADER)
    write_preprocessing(out / PREPROCESSING, p)
    example = torch.zeros(2, p["channels"], p["image_size"], p["image_size"])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.9+ calls TorchScript legacy
        scripted = torch.jit.trace(backbone, example)
    scripted.save(str(out / "encoder.torchscript.pt"))
    files = ["encoder_state_dict.pt", "encoder.json", "load_encoder.py",
             "encoder.torchscript.pt", PREPROCESSING]
    onnx_note = _export_onnx(backbone, example, out / "encoder.onnx") if onnx else "not asked"
    if onnx_note == "encoder.onnx":
        files.append("encoder.onnx")
    report = {"run": enc.run.id, "step": enc.step, "files": files, "onnx": onnx_note}
    atomic_write_json(out / "export.json", report)
    return report


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> str:
    """``encoder.onnx`` when it exports cleanly, else why not (in words)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return "skipped: the onnx package is not installed (pip install onnx)"
    try:
        # the exporter prints its progress and warns about its internals: neither is ours to
        # show (the command's output is one JSON object)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(path), input_names=["images"],
                              output_names=["h"], dynamic_axes={"images": {0: "n"}, "h": {0: "n"}},
                              external_data=False)
    except Exception as exc:  # noqa: BLE001 — an operator ONNX lacks: say so, keep the rest
        path.unlink(missing_ok=True)
        return f"skipped: this backbone does not export to ONNX ({type(exc).__name__}: {exc})"
    return "encoder.onnx"
