"""Start a backbone from pretrained weights: torchvision's ImageNet ResNets, or a file.

``model.pretrained: imagenet`` reads torchvision's ImageNet-1k weights (He et al. 2016,
https://arxiv.org/abs/1512.03385; the BYOL tutorial starts from them) from the local torch hub
cache, ``torch.hub.get_dir()/checkpoints/<file>``, where ``torchvision`` keeps what it
downloads. Nothing is downloaded here: a studio may be offline, so a missing file is a
``ValueError`` saying which file to put where. ``model.pretrained: /path/to/file.pth`` reads a
state dict (plain, or under ``state_dict`` / ``model`` / ``method``; ``module.`` and
``backbone.`` prefixes are dropped).

Tensors whose name or shape the backbone lacks are skipped and reported (torchvision's ``fc``
classifier; the 7x7 ImageNet stem on ``resnet18_cifar``'s 3x3 one); a file that fits nothing
is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

#: backbone -> torchvision model whose ImageNet weights it takes
IMAGENET_MODELS = {"resnet18": "resnet18", "resnet18_cifar": "resnet18", "resnet50": "resnet50"}


def imagenet_file(backbone: str) -> tuple[Path, str]:
    """Where torchvision's ImageNet weights for ``backbone`` are expected, and their URL."""
    if backbone not in IMAGENET_MODELS:
        raise ValueError(f"model.pretrained: imagenet weights exist for "
                         f"{', '.join(IMAGENET_MODELS)}, not {backbone!r}; give a .pth file "
                         "made for this backbone instead")
    import torchvision

    url = torchvision.models.get_model_weights(IMAGENET_MODELS[backbone]).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1], url


def weights_path(spec: str, backbone: str) -> Path:
    """The file ``model.pretrained`` names, checked to exist (``ValueError`` saying what to
    do when it does not)."""
    if spec.strip().lower() == "imagenet":
        path, url = imagenet_file(backbone)
        if not path.is_file():
            raise ValueError(
                f"model.pretrained: imagenet needs torchvision's weights file {path.name} in "
                f"{path.parent}/ and it is not there. On a machine with internet: "
                f"curl -L --create-dirs -o {path} {url} (or run "
                f"python -c \"import torchvision; torchvision.models.{IMAGENET_MODELS[backbone]}"
                f"(weights='IMAGENET1K_V1')\" once), or copy the file there; or set "
                "model.pretrained to the file's path")
        return path
    from engine.data.roots import check_allowed

    path = check_allowed(spec)  # LAN mode: only files inside the data roots
    if not path.is_file():
        raise ValueError(f"model.pretrained: no weights file at {path} (give imagenet, or the "
                         "path of a .pth state dict for this backbone)")
    return path


def _state_dict(obj: Any) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "method"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError("model.pretrained: the file does not hold a state dict")
    out = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in ("module.", "backbone."):
            name = name.removeprefix(prefix)
        out[name] = value
    return out


def load_pretrained(backbone: nn.Module, spec: str, backbone_name: str) -> dict[str, Any]:
    """Copy the weights ``spec`` names (``imagenet`` or a path) into ``backbone``, in place.

    Returns ``{"file", "loaded", "skipped"}``: the file, the number of tensors copied and the
    names of those the backbone has no place for. ``ValueError`` when the file is missing,
    unreadable or fits none of the backbone's tensors.
    """
    path = weights_path(spec, backbone_name)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — a torn or foreign file: say which and why
        raise ValueError(f"model.pretrained: {path} cannot be read ({exc})") from None
    given = _state_dict(obj)
    own = backbone.state_dict()
    fits = {k: v for k, v in given.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise ValueError(f"model.pretrained: none of the {len(given)} tensors in {path} fit "
                         f"backbone {backbone_name!r} (names or shapes differ)")
    backbone.load_state_dict(fits, strict=False)
    return {"file": str(path), "loaded": len(fits), "skipped": sorted(set(given) - set(fits))}
