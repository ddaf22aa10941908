"""Tests for engine.augment.strength: weaker and stronger versions of each op."""

from __future__ import annotations

import pytest

from engine.augment import OPS, validate_view
from engine.augment.strength import has_strength, scaled


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_scales_to_a_valid_op(name: str) -> None:
    for factor in (0.0, 0.5, 1.0, 1.5, 10.0):
        op = scaled({"op": name, "p": 0.7}, factor)
        assert validate_view([op]) == [op] and op["p"] == 0.7
    (default,) = validate_view([{"op": name}])
    assert scaled(default, 1.0) == default


def test_strength_rules_move_away_from_doing_nothing() -> None:
    crop = scaled({"op": "random_resized_crop", "scale": (0.5, 1.0)}, 1.5)
    assert crop["scale"] == (0.25, 1.0)
    jitter = scaled({"op": "color_jitter", "hue": 0.1, "brightness": 0.4}, 0.5)
    assert jitter["hue"] == pytest.approx(0.05) and jitter["brightness"] == pytest.approx(0.2)
    assert scaled({"op": "solarize", "threshold": 0.6}, 2.0)["threshold"] == pytest.approx(0.2)
    assert scaled({"op": "posterize", "bits": 4}, 1.5)["bits"] == 2
    assert scaled({"op": "sharpness", "factor": (0.5, 1.5)}, 2.0)["factor"] == (0.0, 2.0)
    assert scaled({"op": "color_jitter", "hue": 0.4}, 10.0)["hue"] == 0.5  # clipped to bounds
    assert not has_strength("horizontal_flip") and has_strength("rotation")


def test_negative_factor_is_refused() -> None:
    with pytest.raises(ValueError, match="strength factor must be >= 0"):
        scaled({"op": "rotation"}, -1.0)
