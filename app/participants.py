"""Who is using this browser: a participant's name (asked once, kept in the URL as ``?who=``
and in the session), the instructor token (sidebar field or ``?token=``), and the
"my runs / everyone's runs" choice the run pickers and the Runs page share.

A name is a label only: it is never used as a path and never checked against anything; what a
participant may do to a run is the engine registry's decision (``registry().may_act``).
"""

from __future__ import annotations

import streamlit as st

from app.state import registry
from engine.train.participants import MAX_NAME_CHARS, Actor, normalise_name

WHO, TOKEN = "who", "token"
NAME_KEY, TOKEN_KEY, SCOPE_KEY = "participant", "instructor_token", "runs_scope"
MINE, EVERYONE = "My runs", "Everyone's runs"


def name() -> str:
    """This browser's participant name ("" before it is given): the session's, else the URL's;
    written back to the URL, which page switches clear."""
    who = st.session_state.get(NAME_KEY) or normalise_name(st.query_params.get(WHO))
    if who:
        st.session_state[NAME_KEY] = who
        if st.query_params.get(WHO) != who:
            st.query_params[WHO] = who
    return who


def token() -> str:
    """The instructor token given in this browser (sidebar field, or ``?token=`` once: it is
    then taken out of the URL), or ""."""
    url = st.query_params.get(TOKEN)
    if url is not None:  # kept in the session only, so a copied link does not carry it
        del st.query_params[TOKEN]
        if url and not st.session_state.get(TOKEN_KEY):
            st.session_state[TOKEN_KEY] = url
    return st.session_state.get(TOKEN_KEY, "") or ""


def actor() -> Actor:
    """The participant acting from this browser, an instructor when the token is right."""
    return Actor(name(), instructor=bool(token()) and registry().is_instructor(token()))


def _save_name() -> None:
    who = normalise_name(st.session_state.get("participant_name_input"))
    if who:
        st.session_state[NAME_KEY] = who
        st.query_params[WHO] = who


def require_name() -> str:
    """The participant's name; on a first visit, a small form asks for it and the page stops
    there until it is given."""
    who = name()
    if who:
        return who
    st.title("Welcome to SSL Studio")
    st.markdown("Several people can train on this server at once. Your name is shown on the "
                "runs you start, so you and the others can tell them apart.")
    with st.form("participant_form"):
        st.text_input("Your name", key="participant_name_input", max_chars=MAX_NAME_CHARS,
                      placeholder="e.g. Ada")
        st.form_submit_button("Continue", type="primary", on_click=_save_name)
    st.stop()
    return ""  # not reached


def _change_name() -> None:
    st.session_state.pop(NAME_KEY, None)
    if WHO in st.query_params:
        del st.query_params[WHO]


def sidebar() -> None:
    """Who this browser is, a way to change it, and the instructor token field."""
    me = actor()
    with st.sidebar:
        cols = st.columns([3, 2], vertical_alignment="center")
        cols[0].markdown(f":material/person: **{me.name}**"
                         + (" · instructor" if me.instructor else ""))
        cols[1].button("Change", key="participant_change", on_click=_change_name,
                       width="stretch")
        with st.expander("Instructor"):
            st.text_input("Instructor token", key=TOKEN_KEY, type="password",
                          help="Given when the server starts (SSL_STUDIO_INSTRUCTOR_TOKEN); "
                          "lets you stop or delete any run.")
            if token() and not me.instructor:
                st.caption("This token is not the instructor's.")


def scope(key: str) -> bool:
    """A "My runs / Everyone's runs" switch (shared by every page of this browser); True when
    only this participant's runs are to be listed."""
    def remember() -> None:
        st.session_state[SCOPE_KEY] = st.session_state.get(key) or EVERYONE

    choice = st.segmented_control("Show", [MINE, EVERYONE], key=key, on_change=remember,
                                  default=st.session_state.get(SCOPE_KEY, EVERYONE),
                                  label_visibility="collapsed")
    return choice == MINE


def mine(owner: str | None) -> bool:
    """Whether a run whose owner is ``owner`` is this browser's participant's."""
    return bool(owner) and owner == name()
