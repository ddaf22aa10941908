"""Augmentation presets from the papers, stored as JSON in ``assets/presets/augment/``.

Each file holds ``title``, ``description`` (what it is for, and how it was scaled for small
images), ``source`` (paper and link) and ``views``: one op list per view. Adding a preset is
adding a file.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from engine.augment.ops import validate_view

PRESET_DIR = Path(__file__).resolve().parents[2] / "assets" / "presets" / "augment"


def list_presets() -> list[str]:
    """Names of the stored presets, sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


@cache
def _load(name: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(list_presets()) or "(none)"
        raise ValueError(f"unknown augmentation preset {name!r}; known: {known}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"preset {name!r} ({path}) is not valid JSON: {e}") from None
    views = data.get("views")
    if not isinstance(views, list) or not views:
        raise ValueError(f"preset {name!r} needs a non-empty 'views' list")
    try:
        data["views"] = [validate_view(v) for v in views]
    except ValueError as e:
        raise ValueError(f"preset {name!r}: {e}") from None
    return data


def preset_info(name: str) -> dict[str, Any]:
    """``{"name", "title", "description", "source", "views"}`` of a preset (a copy)."""
    data = _load(name)
    return {
        "name": name,
        "title": data.get("title", name),
        "description": data.get("description", ""),
        "source": data.get("source", ""),
        "views": copy.deepcopy(data["views"]),
    }


def preset_views(name: str) -> list[list[dict[str, Any]]]:
    """The validated per-view op lists of a preset (a copy the caller may edit)."""
    return copy.deepcopy(_load(name)["views"])
