"""The Train page's sidebar: the settings of a new run (data, method, backbone, augmentation
preset, budget and optimiser, evaluation)."""

from __future__ import annotations

import streamlit as st

from app.forms import method_form
from engine.augment import list_presets, resolve_views
from engine.config import AugmentConfig, DataConfig, EvalConfig, TrainConfig
from engine.data import DATASETS
from engine.methods import METHODS, describe_method
from engine.models import BACKBONES

DEFAULT_SECONDS = 120
DEFAULT_BATCH = 128  # a step in about a second on a 2-core CPU: the curves move at once
BATCH_SIZES = [16, 32, 64, 128, 256, 512, 1024, 2048]
IMAGE_SIZES = [16, 24, 28, 32, 48, 64, 96, 128, 224]
EVAL_BANK = [500, 1000, 2000, 5000, 10000, 0]
EVAL_QUERIES = [250, 500, 1000, 2000]
#: Data sets of a few small objects on a plain background, for which the presets' crops are
#: sized (no smaller than half the image)
SMALL_OBJECT_DATASETS = ("shapes", "digits")
OPTIMIZERS = {"adamw": "AdamW", "sgd": "SGD + momentum"}
#: SGD's learning rate per 256 images: SimSiam's (Chen & He 2020, section 4)
SGD_LR = 0.05
#: TrainConfig field -> its words in the form
TRAIN_LABELS = {"batch_size": "batch size", "lr": "learning rate",
                "warmup_epochs": "warm-up (epochs)", "weight_decay": "weight decay"}

def _index(options: list, value: object) -> int:
    return options.index(value) if value in options else 0


# -- the set-up, in the sidebar --------------------------------------------------------------
def data_setup() -> DataConfig:
    names = DATASETS.names()
    name = st.selectbox("Data set", names, index=_index(names, "shapes"), key="data_name",
                        help="shapes: built in, the teaching default. Others download on first "
                        "use; folder: your own images (one sub-folder per class).")
    root = ""
    if name == "folder":
        root = st.text_input("Image folder", key="data_root",
                             help="A folder in ImageFolder layout (class sub-folders) or a "
                             "flat folder of images (unlabelled).")
    with st.expander("Data options"):
        size = st.select_slider("Image size (px)", IMAGE_SIZES, value=32, key="data_size")
        train_size = st.number_input("Train images (0 = all)", 0, 10_000_000, 0, 1000,
                                     key="data_train_size")
        labels = st.number_input("Labels per class (0 = all)", 0, 100_000, 0, 10,
                                 key="data_labels", help="Keep labels for only this many train "
                                 "images per class (semi-supervised methods).")
    return DataConfig(name=name, root=root, image_size=int(size), train_size=int(train_size),
                      labels_per_class=int(labels))


def method_setup(data_name: str) -> tuple[str, dict, dict]:
    names = METHODS.names()
    name = st.selectbox("Method", names, index=_index(names, "simclr"), key="method_name")
    desc = describe_method(METHODS.get(name))
    st.caption(f"{desc['summary']} [paper]({desc['paper']})" if desc["paper"] else desc["summary"])
    if data_name in desc["data_caveats"]:
        st.warning(desc["data_caveats"][data_name], icon=":material/info:")
    with st.expander("Method options"):
        params = method_form(desc)
    return name, params, desc


def budget_setup(method_defaults: dict[str, float]) -> TrainConfig:
    """Batch, budget and optimiser; a method's own train defaults (BYOL: batch 64, MIM: a
    1-epoch warm-up) replace the form's when it is picked."""
    engine = TrainConfig()
    own = {"batch_size": DEFAULT_BATCH, "lr": engine.lr, "warmup_epochs": engine.warmup_epochs,
           "weight_decay": engine.weight_decay, **method_defaults}

    def key(name: str) -> str:  # a new widget (so a new default) when the method's differs
        return f"train_{name}_{own[name]}"

    batch = st.select_slider("Batch size", BATCH_SIZES, value=int(own["batch_size"]),
                             key=key("batch_size"),
                             help="Images per step (each seen in two or more views).")
    mode = st.radio("Budget", ["time", "epochs"], horizontal=True, key="train_mode",
                    format_func=lambda m: {"time": "Time budget", "epochs": "Epochs"}[m])
    if mode == "time":
        seconds = st.slider("Seconds", 10, 1800, DEFAULT_SECONDS, 10, key="train_seconds",
                            help="Training stops after this wall time (a normal finish).")
        epochs, max_seconds = 10_000.0, float(seconds)
    else:
        epochs = st.number_input("Epochs", 0.0, 10_000.0, 10.0, 1.0, key="train_epochs",
                                 help="Passes over the train split; 0 evaluates the untrained "
                                 "net.")
        max_seconds = 0.0
    with st.expander("Optimisation"):
        if method_defaults:
            st.caption("This method's own defaults: " + ", ".join(
                f"{TRAIN_LABELS.get(name, name)} {value:g}"
                for name, value in method_defaults.items()))
        optimizer = st.radio("Optimiser", ["adamw", "sgd"], horizontal=True,
                             key="train_optimizer", format_func=OPTIMIZERS.get,
                             help="AdamW: the engine's default, far faster on short runs. SGD "
                             "with momentum: the papers' choice (SimSiam, MoCo) for long ones, "
                             "at a larger learning rate. SimSiam on shapes, 180 s of a CPU: kNN "
                             "+0.05 with SGD at 0.05, +0.28 with AdamW.")
        own_lr = own["lr"] if optimizer == "adamw" else SGD_LR
        lr = st.number_input("Learning rate per 256 images", 1e-6, 10.0, float(own_lr),
                             1e-4, format="%.5f", key=f"train_lr_{optimizer}_{own_lr}",
                             help="Scaled linearly with the batch size. SGD: SimSiam's 0.05.")
        momentum = engine.momentum
        if optimizer == "sgd":
            momentum = st.number_input("Momentum", 0.0, 0.999, engine.momentum, 0.01,
                                       key="train_momentum")
        warmup = st.number_input("Warm-up (epochs)", 0.0, 1000.0, float(own["warmup_epochs"]),
                                 0.1, key=key("warmup_epochs"),
                                 help="Linear warm-up of the learning rate, then cosine decay "
                                 "to 0 at the end of the budget.")
        decay = st.number_input("Weight decay", 0.0, 1.0, float(own["weight_decay"]),
                                1e-5, format="%.5f", key=key("weight_decay"))
    return TrainConfig(batch_size=int(batch), epochs=float(epochs), max_seconds=max_seconds,
                       optimizer=optimizer, lr=float(lr), momentum=float(momentum),
                       warmup_epochs=float(warmup), weight_decay=float(decay))


def eval_setup() -> EvalConfig:
    """Evaluation cost matters on a CPU: the step-0 kNN embeds bank + query images before the
    first step, so the defaults here are smaller than the engine's (which suit a GPU)."""
    with st.expander("Evaluation"):
        bank = st.select_slider("kNN memory bank (train images)", EVAL_BANK, value=1000,
                                key="eval_bank",
                                format_func=lambda n: "all" if n == 0 else f"{n:,}",
                                help="Train images embedded for the kNN vote at each evaluation. "
                                "More is more accurate and slower.")
        queries = st.select_slider("Test images (kNN and map)", EVAL_QUERIES, value=1000,
                                   key="eval_queries", help="Test images classified by kNN; the "
                                   "embedding map shows them too.")
        every = st.slider("Evaluate every (s)", 5, 300, 15, 5, key="eval_every",
                          help="Wall time between evaluations (kNN and a new map). The engine "
                          "spaces them further when one evaluation takes long.")
    return EvalConfig(knn_train_size=int(bank), knn_test_size=int(queries),
                      snapshot_size=int(queries), every_seconds=float(every))


def backbone_setup() -> str:
    backbones = BACKBONES.names()
    return st.selectbox("Backbone", backbones, index=_index(backbones, "small_cnn"),
                        key="backbone", help="small_cnn is fast on a CPU. vit_tiny is for masked "
                        "image modelling (MAE).")


def augment_preset(default: str, data_name: str) -> str:
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
