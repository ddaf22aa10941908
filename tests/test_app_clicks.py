"""A press acts once: the press Streamlit replays into the rerun after an interrupted one is not
taken again (streamlit/streamlit#8291), and no press is lost."""

from __future__ import annotations

import streamlit as st
from streamlit.testing.v1 import AppTest

from app import clicks


def page() -> None:
    import streamlit as st

    from app import clicks

    st.session_state.setdefault("started", 0)
    st.button("Train", key="train", on_click=clicks.count, args=("train",))
    if clicks.take("train"):
        st.session_state.started += 1


def test_each_press_starts_once_in_a_page():
    at = AppTest.from_function(page).run()
    assert at.session_state.started == 0
    at.button(key="train").click().run()
    assert at.session_state.started == 1
    at.run()  # a rerun without a press (another widget, the live panel's refresh)
    assert at.session_state.started == 1
    at.button(key="train").click().run()
    assert at.session_state.started == 2


def test_a_replayed_press_is_not_taken_again(monkeypatch):
    monkeypatch.setattr(st, "session_state", {})  # one session's state, as a plain dict
    clicks.count("go")  # the callback runs once per press
    assert clicks.take("go")  # the rerun of the press acts
    assert not clicks.take("go")  # the next rerun reads the replayed button: nothing new
    clicks.count("go")
    clicks.count("go")
    assert clicks.take("go") and not clicks.take("go")  # two presses before one rerun: one act
