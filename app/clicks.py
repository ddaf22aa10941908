"""Buttons that act once per press.

When a press's rerun is interrupted by another press (a Stop pressed while the page that the
Train press started is still drawing, which a loaded workshop server makes common), Streamlit
replays the first press into the next rerun, so ``if st.button(...)`` is True in both reruns
(streamlit/streamlit#8291): the run was submitted twice, and the second run, which nobody saw,
trained on after its owner's Stop. A button that starts something counts its presses in its
``on_click`` callback (called once per press) and the page acts on the presses it has not taken
yet::

    st.button("Train", key="train", on_click=clicks.count, args=("train",))
    ...
    if clicks.take("train"):
        submit(...)
"""

from __future__ import annotations

import streamlit as st


def _counted(key: str) -> str:
    return f"_presses_{key}"


def _taken(key: str) -> str:
    return f"_presses_taken_{key}"


def count(key: str) -> None:
    """The button's ``on_click``: one more press of ``key``."""
    st.session_state[_counted(key)] = st.session_state.get(_counted(key), 0) + 1


def take(key: str) -> bool:
    """True once for each press of ``key`` not taken yet (a replayed press is not a new one)."""
    presses = st.session_state.get(_counted(key), 0)
    if presses <= st.session_state.get(_taken(key), 0):
        return False
    st.session_state[_taken(key)] = presses
    return True
