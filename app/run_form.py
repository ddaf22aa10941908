"""The Train page's sidebar: the settings of a new run (data, method, backbone, augmentation
preset, budget and optimiser, evaluation).

Defaults, help, bounds and choices come from the engine's declarations (``engine.config``
fields and ``engine.recipe``), so a method picked here gives the run that
``python -m engine train --set method.name=X`` gives.
"""

from __future__ import annotations

import streamlit as st

from app.forms import method_form, setting_help, setting_input, setting_select, setting_slider
from app.state import registry
from engine.augment import list_presets, resolve_views
from engine.config import AugmentConfig, DataConfig, EvalConfig, TrainConfig, describe_setting
from engine.data import DATASETS
from engine.data.roots import allowed_roots, lan_mode
from engine.encoder.parent import parent_run
from engine.methods import METHODS, describe_method
from engine.models import BACKBONES
from engine.recipe import preset_for, train_recipe

DEFAULT_EPOCHS = 10.0  # when the budget is switched to epochs
# The steps the sliders offer (a convenience, not a constraint: the declared default is added
# when missing, and steps outside the declared bounds are dropped)
BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024, 2048]
IMAGE_SIZES = [16, 24, 28, 32, 48, 64, 96, 128, 224]
EVAL_BANK = [500, 1000, 2000, 5000, 10000, 0]
EVAL_QUERIES = [250, 500, 1000, 2000, 5000, 10000]
#: Data sets of a few small objects on a plain background, for which the presets' crops are
#: sized (no smaller than half the image)
SMALL_OBJECT_DATASETS = ("shapes", "digits")
OPTIMIZERS = {"adamw": "AdamW", "sgd": "SGD + momentum"}
SAMPLERS = {"uniform": "uniform", "balanced": "every class in every batch"}
#: TrainConfig field -> its words in the form
TRAIN_LABELS = {"batch_size": "batch size", "lr": "learning rate",
                "warmup_epochs": "warm-up (epochs)", "weight_decay": "weight decay"}


# -- the set-up, in the sidebar --------------------------------------------------------------
def data_setup() -> DataConfig:
    name = setting_select("data.name", "Data set", "data_name", DATASETS.names(),
                          help="shapes: built in, the teaching default. Others download on "
                          "first use; folder: your own images (one sub-folder per class).")
    root = ""
    if name == "folder":
        root = st.text_input("Image folder", key="data_root", help=setting_help("data.root"))
        if lan_mode():
            st.caption("This server reads image folders only inside "
                       + ", ".join(f"`{r}`" for r in allowed_roots())
                       + " (a relative path starts in the first).")
    with st.expander("Data options"):
        size = setting_select("data.image_size", "Image size (px)", "data_size", IMAGE_SIZES,
                              widget="select_slider")
        train_size = setting_input("data.train_size", "Train images (0 = all)",
                                   "data_train_size", step=1000)
        labels = setting_input("data.labels_per_class", "Labels per class (0 = all)",
                               "data_labels", step=10)
        noise = setting_input("data.label_noise", "Label noise (fraction flipped)",
                              "data_label_noise", step=0.05, format="%.2f")
        imbalance = setting_input("data.imbalance", "Class imbalance (largest / smallest)",
                                  "data_imbalance", step=1.0, format="%.1f")
        sampler = setting_select("data.sampler", "Batches", "data_sampler", widget="radio",
                                 horizontal=True, format_func=SAMPLERS.get)
    return DataConfig(name=name, root=root, image_size=int(size), train_size=int(train_size),
                      labels_per_class=int(labels), label_noise=float(noise),
                      imbalance=float(imbalance), sampler=sampler)


def method_setup(data_name: str) -> tuple[str, dict, dict]:
    name = setting_select("method.name", "Method", "method_name", METHODS.names(), help=None)
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
    own = {"weight_decay": TrainConfig().weight_decay, **train_recipe(method_defaults)}

    def key(name: str) -> str:  # a new widget (so a new default) when the method's differs
        return f"train_{name}_{own[name]}"

    batch = setting_select("train.batch_size", "Batch size", key("batch_size"), BATCH_SIZES,
                           int(own["batch_size"]), widget="select_slider")
    # which budget bounds the run: the declared one (a time budget unless it is 0)
    timed = bool(describe_setting("train.max_seconds")["default"])
    mode = st.radio("Budget", ["time", "epochs"], index=0 if timed else 1, horizontal=True,
                    key="train_mode",
                    format_func=lambda m: {"time": "Time budget", "epochs": "Epochs"}[m])
    if mode == "time":
        seconds = setting_slider("train.max_seconds", "Seconds", "train_seconds", 10, 1800, 10)
        epochs, max_seconds = 0.0, float(seconds)  # epochs 0: the time budget alone ends it
    else:
        epochs = setting_input("train.epochs", "Epochs", "train_epochs",
                               describe_setting("train.epochs")["default"] or DEFAULT_EPOCHS,
                               step=1.0,
                               help="Passes over the train split; 0 evaluates the untrained "
                               "net.")
        max_seconds = 0.0
    with st.expander("Optimisation"):
        if method_defaults:
            st.caption("This method's own defaults: " + ", ".join(
                f"{TRAIN_LABELS.get(name, name)} {value:g}"
                for name, value in method_defaults.items()))
        optimizer = setting_select("train.optimizer", "Optimiser", "train_optimizer",
                                   widget="radio", horizontal=True, format_func=OPTIMIZERS.get,
                                   help=setting_help("train.optimizer") + " (SimSiam with each "
                                   "on a CPU: BENCHMARKS.md)")
        own_lr = train_recipe(method_defaults, optimizer)["lr"]
        # the declared bound is "above 0": the form's own range keeps the field usable
        lr = setting_input("train.lr", "Learning rate per 256 images", f"train_lr_{optimizer}_"
                           f"{own_lr}", float(own_lr), step=1e-4, format="%.5f",
                           min_value=1e-6, max_value=10.0)
        momentum = TrainConfig().momentum
        if optimizer == "sgd":
            momentum = setting_input("train.momentum", "Momentum", "train_momentum", step=0.01)
        warmup = setting_input("train.warmup_epochs", "Warm-up (epochs)", key("warmup_epochs"),
                               float(own["warmup_epochs"]), step=0.1)
        decay = setting_input("train.weight_decay", "Weight decay", key("weight_decay"),
                              float(own["weight_decay"]), step=1e-5, format="%.5f")
        accumulate = setting_input("train.accumulate", "Micro-batches per step (accumulation)",
                                   "train_accumulate", step=1)
    return TrainConfig(batch_size=int(batch), epochs=float(epochs), max_seconds=max_seconds,
                       optimizer=optimizer, lr=float(lr), momentum=float(momentum),
                       warmup_epochs=float(warmup), weight_decay=float(decay),
                       accumulate=int(accumulate))


def accumulation_warning(desc: dict, train: TrainConfig) -> str | None:
    """Words for the form when accumulation is set for a method it only approximates
    (``Method.exact_accumulation``, ``engine.train.accumulate``); None otherwise."""
    k = train.accumulate
    if k <= 1 or desc["exact_accumulation"]:
        return None
    micro = (train.batch_size or 0) // k
    return (f"Accumulation is approximate for {desc['name']}: each of the {k} micro-batches "
            f"of {micro} images sees only its own images (as negatives, as positives, in its "
            f"batch statistics), so a step is not the same as one batch of "
            f"{train.batch_size}. It is exact for cross_entropy, rotation and classifier.")


def start_setup() -> tuple[str, str, tuple[str, int] | None]:
    """Where the backbone starts: ``model.pretrained`` and ``model.init_from``, and for the
    latter the parent run's ``(backbone, width)``, which the new run must share (the page has
    no width control, and a parent may come from a lesson or the CLI)."""
    parent = None
    with st.expander("Starting weights"):
        pretrained = st.text_input("Pretrained weights", key="model_pretrained",
                                   placeholder="imagenet, or a .pth file",
                                   help=setting_help("model.pretrained"))
        init_from = st.text_input("Start from run (its encoder)", key="model_init_from",
                                  placeholder="a run id",
                                  help=setting_help("model.init_from") + " With method "
                                  "classifier: the second stage, frozen or fine-tuned.").strip()
        if init_from:
            try:
                model = parent_run(init_from, registry().store).config().model
            except ValueError as exc:
                st.warning(str(exc), icon=":material/warning:")
            else:
                parent = model.backbone, model.width
                st.caption(f"Its encoder is a {model.backbone}"
                           + (f" of width {model.width}" if model.width else "")
                           + "; this run's backbone is the same, whatever the Backbone above.")
    return pretrained.strip(), init_from, parent


def eval_setup() -> EvalConfig:
    """Evaluation cost matters on a CPU: the step-0 kNN embeds bank + query images before the
    first step. The defaults are the engine's (``EvalConfig``)."""
    with st.expander("Evaluation"):
        bank = setting_select("eval.knn_train_size", "kNN memory bank (train images)",
                              "eval_bank", EVAL_BANK, widget="select_slider",
                              format_func=lambda n: "all" if n == 0 else f"{n:,}")
        queries = setting_select("eval.knn_test_size", "Test images (kNN and map)",
                                 "eval_queries", EVAL_QUERIES, widget="select_slider",
                                 help="Test images classified by kNN; the embedding map shows "
                                 "them too (10,000: all of CIFAR-10's test split; each "
                                 "evaluation embeds them all, which takes time on a CPU).")
        every = setting_slider("eval.every_seconds", "Evaluate every (s)", "eval_every", 5,
                               300, 5)
    return EvalConfig(knn_train_size=int(bank), knn_test_size=int(queries),
                      snapshot_size=int(queries), every_seconds=float(every))


def backbone_setup() -> str:
    return setting_select("model.backbone", "Backbone", "backbone", BACKBONES.names())


def augment_preset(default: str, data_name: str) -> str:
    """The preset picker, starting from the method's own (``Method.default_preset``) in its form
    for the data set (``engine.recipe.preset_for``: natural images get SimCLR's crops)."""
    own, default = default, preset_for(default, data_name)
    preset = setting_select("augment.preset", "Augmentation preset", f"aug_preset_{default}",
                            list_presets(), default, help="Edit its ops and see the views it "
                            "makes in the Augmentations tab.")
    crops = [op["scale"][0] for view in resolve_views(AugmentConfig(preset=preset))
             for op in view if op["op"] == "random_resized_crop"]
    if preset == default != own:
        st.caption(f"Natural images: {default}, with crops down to 8 % of the image, is "
                   f"suggested instead of {own} (sized for `shapes`); it learned more on "
                   "CIFAR-10 (BENCHMARKS.md).")
    elif data_name not in SMALL_OBJECT_DATASETS and crops and min(crops) >= 0.5:
        st.caption(f"{preset} crops no smaller than half the image, sized for `shapes`. On "
                   "natural images SimCLR's crops down to 8 % learn more: try simclr_cifar.")
    return preset
