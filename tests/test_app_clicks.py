"""A press acts once: a repeated trigger of the same press (Streamlit replays a press into the
rerun after an interrupted one, streamlit/streamlit#8291; a loaded server delivered one press
twice) is not counted again, and no press is lost."""

from __future__ import annotations

import streamlit as st
from streamlit.testing.v1 import AppTest

from app import clicks


def page() -> None:
    import streamlit as st

    from app import clicks

    st.session_state.setdefault("started", 0)
    clicks.button(st, "Train", "train")
    if clicks.take("train"):
        st.session_state.started += 1


def press(at: AppTest) -> None:
    at.button(key=clicks.widget_key("train", at.session_state)).click().run()


def test_each_press_starts_once_in_a_page():
    at = AppTest.from_function(page).run()
    assert at.session_state.started == 0
    press(at)
    assert at.session_state.started == 1
    at.run()  # a rerun without a press (another widget, the live panel's refresh)
    assert at.session_state.started == 1
    press(at)
    assert at.session_state.started == 2
    assert [b.label for b in at.button] == ["Train"]  # one button, whatever its key


def test_a_repeated_trigger_of_a_press_is_not_counted(monkeypatch):
    monkeypatch.setattr(st, "session_state", {})  # one session's state, as a plain dict
    clicks.press("go", 0)  # the press, as drawn before it
    assert clicks.take("go")  # its rerun acts
    assert not clicks.take("go")  # the next rerun: nothing new
    clicks.press("go", 0)  # the same press delivered again, seconds later
    assert not clicks.take("go")
    assert clicks.widget_key("go") == "go_1"  # the button drawn now is a new widget
    clicks.press("go", 1)  # a new press of the button drawn now
    clicks.press("go", 1)  # ... delivered twice before its rerun: one act
    assert clicks.take("go") and not clicks.take("go")
