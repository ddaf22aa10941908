"""The Train page's settings under Streamlit's AppTest: defaults, bounds and help from the
declarations, the method's own form and defaults, the preset a data set suggests, the budget and
the augmentation editor."""

from __future__ import annotations

import pytest

from tests.fixtures.app import app, no_exception, texts

pytest.importorskip("streamlit.testing.v1")

pytestmark = pytest.mark.usefixtures("no_umap_warm_up")


def test_train_page_opens_with_working_defaults(runs_dir):
    at = app().run()
    no_exception(at)
    assert at.sidebar.selectbox(key="data_name").value == "shapes"
    assert at.sidebar.selectbox(key="method_name").value == "simclr"
    assert at.sidebar.selectbox(key="backbone").value == "small_cnn"
    assert at.sidebar.radio(key="train_mode").value == "time"
    assert "press **Train**" in texts(at)
    # the data tab drew the sample grid and the augmentation tab the preview grid
    assert len(at.get("image")) >= 2


def test_the_sidebar_takes_defaults_bounds_and_help_from_the_declarations(runs_dir,
                                                                          monkeypatch):
    from app import forms
    from engine.config import describe_setting

    changed = {"eval.every_seconds": {"default": 30.0, "help": "Declared help."},
               "data.image_size": {"default": 48, "high": 64},
               "train.max_seconds": {"default": 300.0},
               "eval.knn_train_size": {"default": 3000},
               "train.optimizer": {"default": "sgd"}}
    monkeypatch.setattr(forms, "describe_setting",
                        lambda key: {**describe_setting(key), **changed.get(key, {})})
    at = app().run()
    no_exception(at)
    every = at.sidebar.slider(key="eval_every")
    assert every.value == 30 and every.help == "Declared help."
    size = at.sidebar.select_slider(key="data_size")
    assert size.value == 48 and size.options[-1] == "64"  # larger steps: out of bounds
    assert at.sidebar.slider(key="train_seconds").value == 300
    bank = at.sidebar.select_slider(key="eval_bank")
    assert bank.value == 3000 and "3,000" in bank.options
    assert at.sidebar.radio(key="train_optimizer").value == "sgd"
    assert at.sidebar.number_input(key="train_lr_sgd_0.05").value == 0.05


def test_method_form_is_generated_from_the_method_config(runs_dir):
    at = app().run()
    at.sidebar.selectbox(key="method_name").set_value("supcon").run()
    no_exception(at)
    temp = at.sidebar.number_input(key="method_supcon_temperature")
    assert temp.value > 0
    assert at.sidebar.selectbox(key="aug_preset_" + _default_preset("supcon")) is not None


def test_rotation_on_shapes_says_why_it_means_little(runs_dir):
    at = app().run()
    at.sidebar.selectbox(key="method_name").set_value("rotation").run()
    no_exception(at)
    assert any("natural orientation" in w.value for w in at.sidebar.warning)
    at.sidebar.selectbox(key="data_name").set_value("digits").run()
    assert not any("natural orientation" in w.value for w in at.sidebar.warning)


def test_masked_image_modelling_starts_on_the_small_cnn(runs_dir):
    """MIM's ``auto`` style is SimMIM on a CNN and MAE on a ViT: any backbone is a valid run."""
    at = app().run()
    at.sidebar.selectbox(key="method_name").set_value("mim").run()
    no_exception(at)
    assert at.sidebar.selectbox(key="backbone").value == "small_cnn"
    assert at.sidebar.selectbox(key="method_mim_style").value == "auto"
    at.sidebar.selectbox(key="backbone").set_value("vit_tiny").run()
    no_exception(at)


def test_a_method_brings_its_own_train_defaults(runs_dir):
    at = app().run()
    assert at.sidebar.number_input(key="train_warmup_epochs_0.5").value == 0.5
    at.sidebar.selectbox(key="method_name").set_value("byol").run()
    no_exception(at)
    assert at.sidebar.select_slider(key="train_batch_size_32").value == 32
    assert any("batch size 32" in c.value for c in at.sidebar.caption)
    at.sidebar.selectbox(key="method_name").set_value("mim").run()
    assert at.sidebar.number_input(key="train_warmup_epochs_1.0").value == 1.0
    assert at.sidebar.select_slider(key="train_batch_size_128").value == 128


def test_sgd_brings_its_own_learning_rate_and_momentum(runs_dir):
    at = app().run()
    assert not [n for n in at.sidebar.number_input if n.key == "train_momentum"]
    at.sidebar.radio(key="train_optimizer").set_value("sgd").run()
    no_exception(at)
    assert at.sidebar.number_input(key="train_lr_sgd_0.05").value == 0.05
    assert at.sidebar.number_input(key="train_momentum").value == 0.9


def test_natural_images_get_the_natural_image_preset(runs_dir):
    at = app().run()
    assert not any("simclr_cifar" in c.value for c in at.sidebar.caption)  # shapes: sized for it
    at.sidebar.selectbox(key="data_name").set_value("folder").run()
    no_exception(at)
    picker = at.sidebar.selectbox(key="aug_preset_simclr_cifar")
    assert picker.value == "simclr_cifar"  # the engine's recipe for a folder of photos
    assert any("Natural images: simclr_cifar" in c.value for c in at.sidebar.caption)
    picker.set_value("simclr").run()  # the shapes-sized crops, picked by hand: a hint
    assert any("try simclr_cifar" in c.value for c in at.sidebar.caption)
    at.sidebar.selectbox(key="data_name").set_value("shapes").run()
    assert at.sidebar.selectbox(key="aug_preset_simclr").value == "simclr"


def _default_preset(method: str) -> str:
    from engine.methods import METHODS, describe_method

    return describe_method(METHODS.get(method))["default_preset"]


def test_budget_switch_shows_epochs(runs_dir):
    at = app().run()
    at.sidebar.radio(key="train_mode").set_value("epochs").run()
    no_exception(at)
    assert at.sidebar.number_input(key="train_epochs").value == 10.0


def test_augmentation_editor_drives_the_preview(runs_dir):
    at = app().run()
    preset = at.sidebar.selectbox(key="aug_preset_simclr").value
    at.toggle(key=f"aug_custom_{preset}").set_value(True).run()
    no_exception(at)
    boxes = [
        c
        for c in at.checkbox
        if c.key and c.key.startswith(f"aug_{preset}_v0_") and c.key.endswith("_on")
    ]
    assert boxes, "the editor shows one switch per op"
    boxes[0].uncheck().run()
    no_exception(at)
    at.button(key="aug_resample").click().run()
    no_exception(at)
