"""Buttons that act once per press.

A button that starts something (Train, Run lesson, Queue sweep) must start it once per press.
Under load Streamlit can deliver one press twice: a press whose rerun was interrupted is
replayed into the next rerun (streamlit/streamlit#8291), and on a loaded workshop server a
second trigger of the same press reached the button's callback seconds later, submitting a run
nobody asked for (seen in ``bench/bench_load.py``: the owner's page then jumped to it and its
Stop went to the wrong run).

So each press has a token: the button's key carries the number of presses taken so far, the
callback counts a press only when it carries the current number, and counting advances it, so
the button drawn next is a new widget. A repeated trigger of the same press names the old
widget (whose callback carries the old number, or is gone): it is not counted.

The browser keeps the old widget beside the new one until a run completes; the app hides such
retained copies everywhere (``streamlit_app.py``). The page acts on a counted press once::

    clicks.button(st.sidebar, "Train", "train", type="primary")
    ...
    if clicks.take("train"):
        submit(...)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import streamlit as st

log = logging.getLogger(__name__)


def _token(key: str) -> str:
    return f"_press_token_{key}"


def _pending(key: str) -> str:
    return f"_press_pending_{key}"


def widget_key(key: str, state: Mapping[str, Any] | None = None) -> str:
    """The key the button ``key`` has on the page now (``key`` before its first press,
    ``key_1`` after it, ...). ``state``: a session state (an AppTest's), by default this one."""
    state = st.session_state if state is None else state
    return _widget_key(key, state[_token(key)] if _token(key) in state else 0)


def _widget_key(key: str, token: int) -> str:
    return key if token == 0 else f"{key}_{token}"


def press(key: str, token: int) -> None:
    """The button's ``on_click``: count the press if it carries the current token."""
    current = st.session_state.get(_token(key), 0)
    if token != current:
        log.warning("ignored a repeated trigger of an earlier %r press", key)
        return
    st.session_state[_token(key)] = current + 1
    st.session_state[_pending(key)] = True


def button(where: Any, label: str, key: str, **kwargs: Any) -> None:
    """Draw the button ``key`` in ``where`` (``st``, ``st.sidebar``, a column) with the
    current press token; keyword arguments go to ``st.button``."""
    token = st.session_state.get(_token(key), 0)
    where.button(label, key=_widget_key(key, token), on_click=press, args=(key, token), **kwargs)


def take(key: str) -> bool:
    """True once for each counted press of ``key``."""
    return bool(st.session_state.pop(_pending(key), False))
