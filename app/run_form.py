"""The Train page's sidebar: the settings of a new run (data, method, backbone, augmentation
preset, budget and optimiser, evaluation).

Defaults, help, bounds and choices come from the engine's declarations (``engine.config``
fields and ``engine.recipe``), so a method picked here gives the run that
``python -m engine train --set method.name=X`` gives.
"""

from __future__ import annotations

import streamlit as st

from app.forms import method_form, setting_help, setting_input
from engine.augment import list_presets, resolve_views
from engine.config import (
    AugmentConfig,
    DataConfig,
    EvalConfig,
    TrainConfig,
    describe_setting,
)
from engine.data import DATASETS
from engine.data.roots import allowed_roots, lan_mode
from engine.methods import METHODS, describe_method
from engine.models import BACKBONES
from engine.recipe import train_recipe

DEFAULT_EPOCHS = 10.0  # when the budget is switched to epochs
BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024, 2048]
IMAGE_SIZES = [16, 24, 28, 32, 48, 64, 96, 128, 224]
EVAL_BANK = [500, 1000, 2000, 5000, 10000, 0]
EVAL_QUERIES = [250, 500, 1000, 2000]
#: Data sets of a few small objects on a plain background, for which the presets' crops are
#: sized (no smaller than half the image)
SMALL_OBJECT_DATASETS = ("shapes", "digits")
OPTIMIZERS = {"adamw": "AdamW", "sgd": "SGD + momentum"}
#: TrainConfig field -> its words in the form
TRAIN_LABELS = {"batch_size": "batch size", "lr": "learning rate",
                "warmup_epochs": "warm-up (epochs)", "weight_decay": "weight decay"}


def _with(options: list, value: object) -> list:
    """``options`` with ``value`` among them (an engine default the list lacks), sorted."""
    return options if value in options else sorted([*options, value], key=lambda v: (v == 0, v))


def _index(options: list, value: object) -> int:
    return options.index(value) if value in options else 0


# -- the set-up, in the sidebar --------------------------------------------------------------
def data_setup() -> DataConfig:
    engine = DataConfig()
    names = DATASETS.names()
    name = st.selectbox("Data set", names, index=_index(names, engine.name), key="data_name",
                        help="shapes: built in, the teaching default. Others download on first "
                        "use; folder: your own images (one sub-folder per class).")
    root = ""
    if name == "folder":
        root = st.text_input("Image folder", key="data_root", help=setting_help("data.root"))
        if lan_mode():
            st.caption("This server reads image folders only inside "
                       + ", ".join(f"`{r}`" for r in allowed_roots())
                       + " (a relative path starts in the first).")
    with st.expander("Data options"):
        size = st.select_slider("Image size (px)", _with(IMAGE_SIZES, engine.image_size),
                                value=engine.image_size, key="data_size",
                                help=setting_help("data.image_size"))
        train_size = setting_input("data.train_size", "Train images (0 = all)",
                                   "data_train_size", step=1000)
        labels = setting_input("data.labels_per_class", "Labels per class (0 = all)",
                               "data_labels", step=10)
    return DataConfig(name=name, root=root, image_size=int(size), train_size=int(train_size),
                      labels_per_class=int(labels))


def method_setup(data_name: str) -> tuple[str, dict, dict]:
    names = METHODS.names()
    default = describe_setting("method.name")["default"]
    name = st.selectbox("Method", names, index=_index(names, default), key="method_name")
    desc = describe_method(METHODS.get(name))
    st.caption(f"{desc['summary']} [paper]({desc['paper']})" if desc["paper"] else desc["summary"])
    if data_name in desc["data_caveats"]:
        st.warning(desc["data_caveats"][data_name], icon=":material/info:")
    with st.expander("Method options"):
        params = method_form(desc)
    return name, params, desc


def budget_setup(method_defaults: dict[str, float]) -> TrainConfig:
    """Batch, budget and optimiser, starting from the engine's recipe (``engine.recipe``): a
    method's own train defaults (BYOL: batch 64, MIM: a 1-epoch warm-up) replace the engine's
    when it is picked, as they do for ``--set method.name=X``."""
    engine = TrainConfig()
    own = {"weight_decay": engine.weight_decay, **train_recipe(method_defaults)}

    def key(name: str) -> str:  # a new widget (so a new default) when the method's differs
        return f"train_{name}_{own[name]}"

    batch = st.select_slider("Batch size", _with(BATCH_SIZES, int(own["batch_size"])),
                             value=int(own["batch_size"]), key=key("batch_size"),
                             help=setting_help("train.batch_size"))
    modes = ["time", "epochs"]
    mode = st.radio("Budget", modes, index=0 if engine.max_seconds else 1, horizontal=True,
                    key="train_mode",
                    format_func=lambda m: {"time": "Time budget", "epochs": "Epochs"}[m])
    if mode == "time":
        seconds = st.slider("Seconds", 10, 1800, int(engine.max_seconds or 120), 10,
                            key="train_seconds", help=setting_help("train.max_seconds"))
        epochs, max_seconds = 0.0, float(seconds)  # epochs 0: the time budget alone ends it
    else:
        epochs = setting_input("train.epochs", "Epochs", "train_epochs",
                               engine.epochs or DEFAULT_EPOCHS, step=1.0,
                               help="Passes over the train split; 0 evaluates the untrained "
                               "net.")
        max_seconds = 0.0
    with st.expander("Optimisation"):
        if method_defaults:
            st.caption("This method's own defaults: " + ", ".join(
                f"{TRAIN_LABELS.get(name, name)} {value:g}"
                for name, value in method_defaults.items()))
        choices = list(describe_setting("train.optimizer")["choices"])
        optimizer = st.radio("Optimiser", choices, index=_index(choices, engine.optimizer),
                             horizontal=True, key="train_optimizer", format_func=OPTIMIZERS.get,
                             help=setting_help("train.optimizer")
                             + " See BENCHMARKS.md for SimSiam with each on a CPU.")
        own_lr = train_recipe(method_defaults, optimizer)["lr"]
        lr = st.number_input("Learning rate per 256 images", value=float(own_lr), step=1e-4,
                             format="%.5f", key=f"train_lr_{optimizer}_{own_lr}",
                             min_value=1e-6, max_value=10.0, help=setting_help("train.lr"))
        momentum = engine.momentum
        if optimizer == "sgd":
            momentum = setting_input("train.momentum", "Momentum", "train_momentum", step=0.01)
        warmup = setting_input("train.warmup_epochs", "Warm-up (epochs)", key("warmup_epochs"),
                               float(own["warmup_epochs"]), step=0.1)
        decay = setting_input("train.weight_decay", "Weight decay", key("weight_decay"),
                              float(own["weight_decay"]), step=1e-5, format="%.5f")
    return TrainConfig(batch_size=int(batch), epochs=float(epochs), max_seconds=max_seconds,
                       optimizer=optimizer, lr=float(lr), momentum=float(momentum),
                       warmup_epochs=float(warmup), weight_decay=float(decay))


def eval_setup() -> EvalConfig:
    """Evaluation cost matters on a CPU: the step-0 kNN embeds bank + query images before the
    first step. The defaults are the engine's (``EvalConfig``)."""
    engine = EvalConfig()
    with st.expander("Evaluation"):
        bank = st.select_slider("kNN memory bank (train images)",
                                _with(EVAL_BANK, engine.knn_train_size),
                                value=engine.knn_train_size, key="eval_bank",
                                format_func=lambda n: "all" if n == 0 else f"{n:,}",
                                help=setting_help("eval.knn_train_size"))
        queries = st.select_slider("Test images (kNN and map)",
                                   _with(EVAL_QUERIES, engine.knn_test_size),
                                   value=engine.knn_test_size, key="eval_queries",
                                   help="Test images classified by kNN; the embedding map shows "
                                   "them too.")
        every = st.slider("Evaluate every (s)", 5, 300, int(engine.every_seconds), 5,
                          key="eval_every", help=setting_help("eval.every_seconds"))
    return EvalConfig(knn_train_size=int(bank), knn_test_size=int(queries),
                      snapshot_size=int(queries), every_seconds=float(every))


def backbone_setup() -> str:
    backbones = BACKBONES.names()
    default = describe_setting("model.backbone")["default"]
    return st.selectbox("Backbone", backbones, index=_index(backbones, default),
                        key="backbone", help=setting_help("model.backbone"))


def augment_preset(default: str, data_name: str) -> str:
    """The preset picker, starting from the method's own (``Method.default_preset``)."""
    presets = list_presets()
    preset = st.selectbox("Augmentation preset", presets, index=_index(presets, default),
                          key=f"aug_preset_{default}",
                          help="Edit its ops and see the views it makes in the Augmentations tab.")
    crops = [op["scale"][0] for view in resolve_views(AugmentConfig(preset=preset))
             for op in view if op["op"] == "random_resized_crop"]
    if data_name not in SMALL_OBJECT_DATASETS and crops and min(crops) >= 0.5:
        st.caption(f"{preset} crops no smaller than half the image, sized for `shapes`. On "
                   "natural images SimCLR's crops down to 8 % learn more: try simclr_cifar.")
    return preset
