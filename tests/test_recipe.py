"""One recipe everywhere: the configuration ``python -m engine train --set method.name=X``
builds is the one the Train page builds when X is picked (every field), and a method's own
settings fill only what a configuration leaves to it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.cli import load_config
from engine.config import AugmentConfig, RunConfig, TrainConfig
from engine.methods import METHODS
from engine.recipe import NATURAL_PRESETS, SGD_LR, TRAIN_RECIPE, recipe, resolve
from tests.fixtures.app import APP, TIMEOUT, no_exception

pytestmark = pytest.mark.usefixtures("no_umap_warm_up")

LEFT_TO_THE_METHOD = {"batch_size", "lr", "warmup_epochs"}


def test_a_method_declares_only_settings_it_may_own():
    for name in METHODS.names():
        assert set(METHODS.get(name).train_defaults) <= LEFT_TO_THE_METHOD, name


@pytest.mark.parametrize("name", METHODS.names())
def test_a_method_fills_what_the_config_leaves_to_it(name):
    method = METHODS.get(name)
    cfg = RunConfig().with_overrides({"method.name": name})
    assert cfg.augment.preset == method.default_preset
    for key, value in {**TRAIN_RECIPE, **method.train_defaults}.items():
        assert getattr(cfg.train, key) == value, key
    # config.json holds concrete values, and reads back as the same run
    saved = json.loads(json.dumps(cfg.to_dict()))
    assert None not in saved["train"].values() and saved["augment"]["preset"]
    assert RunConfig.from_dict(saved) == cfg


def test_an_explicit_value_wins_and_another_method_brings_its_own():
    byol = RunConfig().with_overrides({"method.name": "byol"})
    assert (byol.train.batch_size, byol.augment.preset) == (32, "colour_invariant")
    mine = byol.with_overrides({"train.batch_size": 48, "augment.preset": "simclr"})
    assert (mine.train.batch_size, mine.augment.preset) == (48, "simclr")
    mim = mine.with_overrides({"method.name": "mim"})
    assert mim.train.batch_size == 48 and mim.augment.preset == "simclr"  # explicit: kept
    assert mim.train.warmup_epochs == 1.0  # left to the method: MIM's
    back = byol.with_overrides({"method.name": "simclr"})
    assert back.train.batch_size == TRAIN_RECIPE["batch_size"] and back.augment.preset == "simclr"
    assert RunConfig().with_overrides({"train.optimizer": "sgd"}).train.lr == SGD_LR
    assert RunConfig(train=TrainConfig(batch_size=48), augment=AugmentConfig(preset="byol"))\
        .train.batch_size == 48
    assert resolve({"method": {"name": "byol"}}) == byol
    assert resolve(byol) == byol
    assert recipe("no_such_method")["augment.preset"] == "simclr"


def test_natural_images_get_the_natural_image_form_of_a_preset():
    folder = RunConfig().with_overrides({"data.name": "folder"})
    assert folder.augment.preset == NATURAL_PRESETS["simclr"] == "simclr_cifar"
    assert folder.with_overrides({"data.name": "shapes"}).augment.preset == "simclr"
    assert folder.with_overrides({"method.name": "byol"}).augment.preset == "colour_invariant"
    mine = folder.with_overrides({"augment.preset": "simclr"})  # explicit: kept
    assert mine.augment.preset == "simclr"
    assert recipe("simclr", data="cifar10")["augment.preset"] == "simclr_cifar"
    assert recipe("simclr", data="digits")["augment.preset"] == "simclr"


def _page_config(method: str, runs_dir: Path) -> RunConfig:
    """Pick ``method`` on the Train page, press Train, and read the run's config.json."""
    from streamlit.testing.v1 import AppTest

    from app.state import registry

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["who"] = "tester"  # a participant's name, asked once per browser
    at.run()
    no_exception(at)
    at.sidebar.selectbox(key="method_name").set_value(method).run()
    no_exception(at)
    at.sidebar.button(key="train").click().run()
    try:
        no_exception(at)
        deadline = time.time() + 30
        files: list[Path] = []
        while not files and time.time() < deadline:
            files = list(runs_dir.glob("*/config.json"))
            time.sleep(0.05)
        assert len(files) == 1, [e.value for e in at.error]
        return RunConfig.from_dict(json.loads(files[0].read_text()))
    finally:
        registry().stop_all()


@pytest.mark.parametrize("name", METHODS.names())
def test_the_cli_and_the_train_page_build_the_same_run(name, runs_dir):
    cli = load_config(None, [f"method.name={name}"])
    page = _page_config(name, runs_dir)
    assert page.to_dict() == cli.to_dict()
    assert page == cli
