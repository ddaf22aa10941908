import pytest

from engine.config import RunConfig, validate


def test_round_trip_through_dict():
    cfg = RunConfig().with_overrides(
        {"train.batch_size": 64, "method.name": "supcon", "method.temperature": 0.2, "seed": 3}
    )
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.method.params == {"temperature": 0.2}
    assert again.train.batch_size == 64 and again.seed == 3


def test_cli_strings_are_coerced_to_field_types():
    cfg = RunConfig().with_overrides(
        {
            "train.epochs": "2.5",
            "train.batch_size": "128",
            "train.compile": "true",
            "augment.disable": "color_jitter,grayscale",
        }
    )
    assert cfg.train.epochs == 2.5
    assert cfg.train.batch_size == 128
    assert cfg.train.compile is True
    assert cfg.augment.disable == ("color_jitter", "grayscale")


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("train.batch_size", 1, "batch_size must be at least 2"),
        ("train.lr", -1.0, "lr must be positive"),
        ("data.image_size", 4, "at least 8"),
        ("train.optimizer", "rmsprop", "adamw"),
    ],
)
def test_impossible_settings_give_actionable_messages(key, value, words):
    with pytest.raises(ValueError, match=words):
        validate(RunConfig().with_overrides({key: value}))


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match="unknown key 'train.bogus'"):
        RunConfig().with_overrides({"train.bogus": 1})
    with pytest.raises(ValueError, match="unknown config section"):
        RunConfig.from_dict({"nope": {}})


def test_wrong_type_is_named():
    with pytest.raises(ValueError, match="train.batch_size: cannot use 'big'"):
        RunConfig().with_overrides({"train.batch_size": "big"})
