"""Train: set up a run (data, backbone, method, augmentations, budget), start it, watch it live."""

from __future__ import annotations

import json

import streamlit as st

from app import all_gpus, charts, clicks, controls, images, live, participants
from app.controls import submit
from app.forms import view_editor
from app.participants import Actor
from app.run_form import (
    accumulation_warning,
    augment_preset,
    backbone_setup,
    budget_setup,
    data_setup,
    eval_setup,
    method_setup,
    start_setup,
)
from app.run_info import ACTIVE, owner, pick_run, run_status
from app.state import dataset, dataset_is_quick, registry, select_run, selected_run
from engine.augment import preset_info, preview_grid, resolve_views
from engine.config import (
    AugmentConfig,
    DataConfig,
    MethodConfig,
    ModelConfig,
    RunConfig,
)

PICKER = "train_run_picker"
ERROR = "train_error"  # (inputs, message) of the last refused start


# -- the main area ---------------------------------------------------------------------------
def fingerprint(cfg: RunConfig) -> str:
    """The inputs a start error belongs to: the error shows while they stay the same."""
    return json.dumps(cfg.to_dict(), sort_keys=True, default=str)


def start(cfg: RunConfig, quick: bool, actor: Actor) -> None:
    """Queue the run; on success the page follows it (a new rerun), on a refusal the message is
    kept with the inputs it belongs to and drawn in this same rerun."""
    try:
        ds = dataset(cfg.data) if quick else None
        run_id = submit(cfg, actor, ds)
    except Exception as exc:  # noqa: BLE001 — every set-up error is the user's to fix
        st.session_state[ERROR] = (fingerprint(cfg), str(exc) or type(exc).__name__)
        return
    st.session_state.pop(ERROR, None)
    select_run(run_id)
    st.rerun()


def my_live_run(name: str) -> str | None:
    """For a browser that has chosen no run yet: this participant's newest run still queued or
    going (a new tab finds it), selected; never anyone else's."""
    for run in registry().runs():
        if owner(run) == name and run_status(run.id) in ACTIVE:
            select_run(run.id)
            return run.id
    return None


def start_error(cfg: RunConfig) -> str | None:
    """The message of the last refused start, while the inputs are still those it refused."""
    error = st.session_state.get(ERROR)
    if error and error[0] == fingerprint(cfg):
        return error[1]
    st.session_state.pop(ERROR, None)
    return None


def data_tab(cfg: DataConfig, quick: bool) -> None:
    if not quick and not st.button("Load this data set (may download)", key="load_data"):
        st.info(f"`{cfg.name}` is not on disk yet; it downloads when you start a run or press "
                "the button.")
        return
    try:
        with st.spinner(f"Loading {cfg.name}…"):
            ds = dataset(cfg)
    except Exception as exc:  # noqa: BLE001 — bad folder, failed download: the user's to fix
        st.error(f"**Cannot load `{cfg.name}`:** {exc}")
        return
    d = ds.describe()
    st.markdown(f"**{d['name']}**: {d['train']:,} train and {d['test']:,} test images, "
                f"{d['channels']} channel(s), {d['image_size']} px, {len(d['classes'])} classes"
                + (f", {d['unlabelled']:,} unlabelled" if d["unlabelled"] else "")
                + (f". Attributes to colour maps by: {', '.join(d['attributes'])}"
                   if d["attributes"] else "."))
    if d["skipped"]:
        more = ", ..." if ds.skipped > len(ds.skipped_examples) else ""
        st.warning(f"{d['skipped']} file(s) could not be read and were skipped: "
                   + "; ".join(f"`{path}` ({reason}" for path, _, reason in
                               (e.partition(" (") for e in ds.skipped_examples)) + more)
    left, right = st.columns([3, 2])
    with left:
        shown = ds.train.spread(48)
        st.image(images.grid(ds.train.images[shown], columns=12, size=64),
                 caption=f"{len(shown)} train images, a class at a time in turn")
    with right:
        counts = d["class_counts"]
        st.plotly_chart(charts.bars(list(counts), list(counts.values()), "Images per class"),
                        key="class_counts", config={"displayModeBar": False})


PREVIEW_IMAGES = 12  # source images in the preview, laid out in blocks of PREVIEW_ROWS rows
PREVIEW_ROWS = 4


def augment_tab(preset: str, data_cfg: DataConfig, quick: bool) -> AugmentConfig:
    info = preset_info(preset)
    st.markdown(f"**{info['title']}**: {info['description']}")
    if info["source"]:
        st.caption(info["source"])
    views = [list(v) for v in info["views"]]
    custom = st.toggle("Edit the ops of this preset", key=f"aug_custom_{preset}",
                       help="Switch ops off, change their probabilities and parameters, add ops.")
    if custom:
        cols = st.columns(len(views))
        edited = []
        for i, (col, view) in enumerate(zip(cols, views, strict=True)):
            with col:
                st.markdown(f"**View {i + 1}**")
                edited.append(view_editor(view, key=f"aug_{preset}_v{i}"))
        views = edited
    else:
        st.caption(" · ".join(f"view {i + 1}: " + ", ".join(op["op"] for op in v)
                              for i, v in enumerate(views)))
    aug = AugmentConfig(preset=preset, views=tuple(tuple(v) for v in views) if custom else ())
    if quick:
        try:
            ds = dataset(data_cfg)
            seed = st.session_state.get("aug_seed", 0)
            top = st.columns([4, 1])
            top[0].markdown("**Sampled views**: in each row, an image and its "
                            f"{len(views)} views, made by the same batched sampler that trains.")
            if top[1].button("New sample", icon=":material/casino:", key="aug_resample"):
                st.session_state["aug_seed"] = seed = seed + 1
            grid = preview_grid(ds.train.images[ds.train.spread(PREVIEW_IMAGES)],
                                resolve_views(aug), n=PREVIEW_IMAGES,
                                seed=seed)
            st.image(images.enlarge(images.row_blocks(grid, PREVIEW_ROWS, PREVIEW_IMAGES), 800))
        except Exception as exc:  # noqa: BLE001 — an impossible op setting is the user's to fix
            st.error(f"**Cannot preview these augmentations:** {exc}")
    return aug


def main() -> None:
    st.title("Train")
    actor = participants.actor()
    with st.sidebar:
        st.header("New run")
        data_cfg = data_setup()
        method, params, desc = method_setup(data_cfg.name)
        backbone = backbone_setup()
        pretrained, init_from, parent = start_setup()
        width = ModelConfig().width
        if parent is not None:  # a run that starts from another's encoder has its shape
            backbone, width = parent
        preset = augment_preset(desc["default_preset"], data_cfg.name)
        train_cfg = budget_setup(desc["train_defaults"])
        warning = accumulation_warning(desc, train_cfg)
        if warning:
            st.warning(warning, icon=":material/warning:")
        eval_cfg = eval_setup()
        name = st.text_input("Run name (optional)", key="run_name")
        clicks.button(st, "Train", "train", icon=":material/rocket_launch:", type="primary",
                      width="stretch")
        all_gpus_slot = st.empty()  # "Train on all GPUs", on a machine with several
    quick = dataset_is_quick(data_cfg)

    run_id = selected_run() or my_live_run(actor.name)
    top = st.columns([3, 2])
    with top[0]:
        only_mine = participants.scope("train_scope")
        run_id = pick_run("Run", run_id, PICKER, on_pick=select_run,
                          only_owner=actor.name if only_mine else None)
    error_box = st.empty()  # a refused start is drawn here, in the rerun of the press

    tab_live, tab_data, tab_aug = st.tabs([":material/monitoring: Live", ":material/image: Data",
                                         ":material/tune: Augmentations"])
    with tab_aug:
        aug = augment_tab(preset, data_cfg, quick)
    cfg = RunConfig(
        data=data_cfg, model=ModelConfig(backbone=backbone, width=width, pretrained=pretrained,
                                         init_from=init_from), augment=aug,
        method=MethodConfig(name=method, params=params), train=train_cfg,
        eval=eval_cfg, name=name,
    )
    if clicks.take("train"):
        start(cfg, quick, actor)
    with all_gpus_slot.container():
        all_gpus.button(cfg, actor)
    error = start_error(cfg)
    if error:
        error_box.error(f"**Cannot start the run:** {error}", icon=":material/error:")
    with tab_data:
        data_tab(data_cfg, quick)
    with tab_live:
        if run_id:
            with top[1]:
                if not all_gpus.controls(run_id, actor):
                    controls.buttons(run_id, actor)
            live.show(run_id)
        else:
            st.info("No run on screen. Pick a data set and a method in the sidebar (the "
                    "defaults work) and press **Train**, or choose an earlier run above.")


main()
