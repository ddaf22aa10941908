"""Forms generated from the engine's declarations: a method's options (its config dataclass) and
the augmentation ops (``engine.augment.OPS``), so the UI and the engine cannot disagree."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from engine.augment.ops import OPS, validate_view
from engine.config import describe_setting


def _step(low: float, high: float) -> float:
    span = high - low
    return float(10 ** (round(math.log10(span)) - 2)) if span > 0 else 0.01


def option_widget(option: dict[str, Any], key: str, container: Any = st) -> Any:
    """One widget for one method option (as described by ``describe_method``)."""
    name, default, help_ = option["name"], option["default"], option.get("help") or None
    low, high, choices = option.get("low"), option.get("high"), option.get("choices")
    label = name.replace("_", " ")
    if choices:
        choices = list(choices)
        return container.selectbox(label, choices, index=choices.index(default) if default in
                                   choices else 0, key=key, help=help_)
    if isinstance(default, bool):
        return container.toggle(label, value=default, key=key, help=help_)
    if isinstance(default, int):
        return int(container.number_input(
            label, value=default, step=1, key=key, help=help_,
            min_value=int(low) if low is not None else None,
            max_value=int(high) if high is not None else None,
        ))
    if isinstance(default, float):
        return float(container.number_input(
            label, value=float(default), key=key, help=help_, format="%g",
            step=_step(low, high) if low is not None and high is not None else None,
            min_value=float(low) if low is not None else None,
            max_value=float(high) if high is not None else None,
        ))
    return container.text_input(label, value=str(default), key=key, help=help_)


def method_form(description: dict[str, Any], container: Any = st) -> dict[str, Any]:
    """Widgets for every option of a method; returns the options that differ from the
    defaults (what goes into ``method.params``)."""
    params: dict[str, Any] = {}
    for option in description["options"]:
        key = f"method_{description['name']}_{option['name']}"
        value = option_widget(option, key, container)
        if value != option["default"]:
            params[option["name"]] = value
    return params


# -- run settings ------------------------------------------------------------------------------
def setting_help(key: str) -> str:
    """A run setting's declared help (``engine.config``), without the words about leaving it
    unset (a form always sets it)."""
    text = describe_setting(key)["help"] or ""
    return " ".join(s for s in text.split(". ") if not s.startswith("Unset")).strip()


def _declared(key: str, value: Any) -> tuple[dict[str, Any], Any]:
    """The declaration of ``key`` and the widget's starting value: ``value`` (e.g. a method's
    own) or the declared default."""
    d = describe_setting(key)
    return d, d["default"] if value is None else value


def _allowed(d: dict[str, Any], value: Any) -> bool:
    """``value`` within the declared bounds of ``d`` (non-numbers always are)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return True
    return ((d["low"] is None or value >= d["low"]) and (d["high"] is None or value <= d["high"])
            and (d["above"] is None or value > d["above"]))


def with_value(options: list, value: Any) -> list:
    """``options`` with ``value`` among them (a default the list lacks); numbers stay sorted,
    0 ("all", "none") last."""
    if value in options:
        return list(options)
    if all(isinstance(o, int | float) for o in [*options, value]):
        return sorted([*options, value], key=lambda v: (v == 0, v))
    return [*options, value]


def setting_input(key: str, label: str, widget_key: str, value: float | None = None,
                  **kwargs: Any) -> Any:
    """A number input for the run setting ``key`` ("section.field"): its declared default
    (or ``value``, e.g. a method's own), bounds and help; ``min_value`` / ``max_value`` may
    narrow the bounds. Returns an int for int settings."""
    d, default = _declared(key, value)
    kind = int if isinstance(default, int) and not isinstance(default, bool) else float
    low = d["low"] if d["low"] is not None else d["above"]
    low = kwargs.pop("min_value", low)
    high = kwargs.pop("max_value", d["high"])
    return kind(st.number_input(
        label, value=kind(default), key=widget_key, help=kwargs.pop("help", setting_help(key)),
        min_value=kind(low) if low is not None else None,
        max_value=kind(high) if high is not None else None, **kwargs,
    ))


def setting_select(key: str, label: str, widget_key: str, options: list | None = None,
                   value: Any = None, widget: str = "selectbox", **kwargs: Any) -> Any:
    """A choice for the run setting ``key``: among its declared choices, or among ``options``
    (a form's convenient steps, those outside the declared bounds dropped, the default added),
    starting at its declared default (or ``value``), with its help. ``widget``: "selectbox",
    "radio" or "select_slider"."""
    d, default = _declared(key, value)
    if options is None:
        options = list(d["choices"] or ())
    options = [o for o in with_value(options, default) if _allowed(d, o)]
    draw = {"selectbox": st.selectbox, "radio": st.radio, "select_slider": st.select_slider}
    kwargs.setdefault("help", setting_help(key))
    if widget == "select_slider":
        return st.select_slider(label, options, value=default, key=widget_key, **kwargs)
    return draw[widget](label, options, index=options.index(default), key=widget_key, **kwargs)


def setting_slider(key: str, label: str, widget_key: str, low: int, high: int, step: int,
                   value: float | None = None, **kwargs: Any) -> int:
    """A slider for the numeric run setting ``key`` over a form's range ``low`` to ``high``
    (narrowed to the declared bounds), starting at its declared default (or ``value``), with
    its help."""
    d, default = _declared(key, value)
    if d["low"] is not None:
        low = max(low, int(d["low"]))
    if d["high"] is not None:
        high = min(high, int(d["high"]))
    start = min(max(int(default), low), high)
    kwargs.setdefault("help", setting_help(key))
    return int(st.slider(label, low, high, start, step, key=widget_key, **kwargs))


# -- augmentations ---------------------------------------------------------------------------
def _param_widget(op: str, pname: str, value: Any, key: str) -> Any:
    spec = OPS[op].params[pname]
    label = pname.replace("_", " ")
    if spec.kind == "bool":
        return st.checkbox(label, value=bool(value), key=key, help=spec.help)
    if spec.kind == "int":
        return st.slider(label, int(spec.low), int(spec.high), int(value), key=key, help=spec.help)
    step = _step(float(spec.low), float(spec.high))
    if spec.kind == "range":
        lo, hi = (float(v) for v in value)
        return tuple(st.slider(label, float(spec.low), float(spec.high), (lo, hi), step=step,
                               key=key, help=spec.help))
    return st.slider(label, float(spec.low), float(spec.high), float(value), step=step, key=key,
                     help=spec.help)


#: the "Add an op" picker's first choice, which adds nothing
ADD_PROMPT = "(add an op)"


def _add_op(picker: str, added_key: str) -> None:
    """The "Add an op" picker's callback: keep the chosen op, then set the picker back to its
    prompt. Set in the session, the browser's picker shows the prompt too (a deleted key would
    leave the browser on the op, sending it again with the next rerun of any control)."""
    op = st.session_state.get(picker)
    if op and op != ADD_PROMPT:
        st.session_state[added_key] = [*st.session_state.get(added_key, []), op]
    st.session_state[picker] = ADD_PROMPT


def view_editor(view: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Edit one view: each op can be switched off, its probability and parameters changed;
    ops can be added. Returns the edited op list."""
    added_key = f"{key}_added"
    ops = validate_view(view) + validate_view([{"op": n} for n in st.session_state.get(
        added_key, [])])
    out = []
    for i, op in enumerate(ops):
        name = op["op"]
        spec = OPS[name]
        with st.container(border=True):
            top = st.columns([3, 2])
            on = top[0].checkbox(f"**{name.replace('_', ' ')}**", value=True,
                                 key=f"{key}_{i}_{name}_on", help=spec.help)
            p = top[1].slider("probability", 0.0, 1.0, float(op["p"]), 0.05,
                              key=f"{key}_{i}_{name}_p", disabled=not on,
                              help="chance that each image gets this op")
            edited = {"op": name, "p": p}
            if on and spec.params:
                cols = st.columns(min(len(spec.params), 2))
                for j, pname in enumerate(spec.params):
                    with cols[j % len(cols)]:
                        edited[pname] = _param_widget(name, pname, op[pname],
                                                      f"{key}_{i}_{name}_{pname}")
            if on:
                out.append(edited)
    st.selectbox("Add an op", [ADD_PROMPT, *sorted(OPS)], key=f"{key}_add",
                 label_visibility="collapsed", on_change=_add_op, args=(f"{key}_add", added_key))
    return out
