"""Buttons that act once per press.

A button that starts something (Train, Run lesson, Queue sweep) must start it once per press.
Streamlit can deliver one press twice: a press whose rerun was interrupted is replayed into the
next rerun (streamlit/streamlit#8291), and its callback can be called again for the same press.
Each press therefore carries a token, the number of presses of that button taken so far: the
button's callback counts a press only when its token is the current one, and counting advances
it, so a second delivery of the same press (which carries the old token) is not counted. The
page acts on a counted press once::

    clicks.button(st, "Train", "train", type="primary")
    ...
    if clicks.take("train"):
        submit(...)
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

log = logging.getLogger(__name__)


def _token(key: str) -> str:
    return f"_press_token_{key}"


def _pending(key: str) -> str:
    return f"_press_pending_{key}"


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
    where.button(label, key=key, on_click=press, args=(key, token), **kwargs)


def take(key: str) -> bool:
    """True once for each counted press of ``key``."""
    return bool(st.session_state.pop(_pending(key), False))
