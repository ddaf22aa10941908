"""What a participant can do to a run from the pages: submit it, cancel it while queued, pause,
un-pause, stop, resume an interrupted or stopped one, delete it. The engine's registry decides
who may (``may_act``: the owner or the instructor) and says why not; the buttons are shown only
to those who may, and a refusal is shown where the button was pressed, in the same rerun."""

from __future__ import annotations

import time

import streamlit as st

from app.run_info import ACTIVE, run_status
from app.state import registry, run_dir, select_run
from engine.config import RunConfig
from engine.data import Dataset
from engine.train.participants import Actor

#: seconds a Stop or Cancel waits for the run to end before the page redraws
STOP_WAIT_S = 10.0


def submit(cfg: RunConfig, actor: Actor, dataset: Dataset | None) -> str:
    """Queue a run for ``actor`` (it starts at once when a slot is free); returns its id.
    Raises ``ValueError`` or ``PermissionError`` with one readable line."""
    return registry().submit(cfg, actor, dataset)


def may_act(actor: Actor, run_id: str) -> bool:
    try:
        return registry().may_act(actor, run_id)
    except (FileNotFoundError, ValueError):
        return False


def queue_text(run_id: str) -> str:
    """``Queued, position 2, starts in about 3 min`` (what the scheduler knows)."""
    reg = registry()
    position, start = reg.queue_position(run_id), reg.estimated_start(run_id)
    text = "Queued" + (f", position {position}" if position else "")
    if start is not None:
        minutes = max(0.0, start - time.time()) / 60
        text += (", starts in less than a minute" if minutes < 1
                 else f", starts in about {minutes:.0f} min")
    return text


def resumable(run_id: str) -> bool:
    run = run_dir(run_id)
    return (run is not None and run_status(run_id) in ("stopped", "interrupted")
            and bool(run.summary().get("resumable")))


def act(verb: str, run_id: str, actor: Actor) -> str | None:
    """Do ``verb`` (stop, pause, unpause, resume, delete) to the run as ``actor``; returns the
    refusal's message, or None when it was done (a stop waits for the run to end)."""
    reg = registry()
    try:
        if verb == "stop":
            if not reg.stop(run_id, actor, timeout=STOP_WAIT_S):
                return ("it has not ended yet: a run trained by another process (the command "
                        "line) is stopped there" if reg.live(run_id) is None
                        else "it has not ended yet; press Stop again in a moment")
        elif verb == "pause":
            reg.pause(run_id, actor)
        elif verb == "unpause":
            reg.unpause(run_id, actor)
        elif verb == "resume":
            select_run(reg.resume(run_id, actor) or run_id)
        elif verb == "delete":
            reg.delete(run_id, actor)
        else:
            raise ValueError(f"unknown action {verb!r}")
    except (PermissionError, ValueError, FileNotFoundError, RuntimeError) as exc:
        return str(exc) or type(exc).__name__
    return None


def _press(verb: str, run_id: str, actor: Actor, key: str) -> None:
    """A button's callback: it runs before the page is drawn, so the press counts even when
    the run's status has changed meanwhile and the button is no longer drawn (a queued run
    that started while Cancel was pressed is stopped all the same)."""
    error = act(verb, run_id, actor)
    if error:
        st.session_state[f"{key}refusal"] = (run_id, error)


def buttons(run_id: str, actor: Actor, key: str = "") -> None:
    """The run's controls for its status, shown only to who may use them: Cancel (queued),
    Pause / Resume and Stop (going), Resume (an interrupted or stopped run with a checkpoint).
    A press acts before the page is drawn again; a refusal is shown under the buttons."""
    refusal = st.session_state.pop(f"{key}refusal", None)
    status = run_status(run_id)
    if status in ACTIVE or resumable(run_id):
        if may_act(actor, run_id):
            _draw(run_id, status, actor, key)
        else:
            run = run_dir(run_id)
            who = (run.summary().get("owner") if run else None) or "its owner"
            st.caption(f"Started by **{who}**: only they or the instructor can steer it.")
    if refusal is not None and refusal[0] == run_id:
        st.error(refusal[1], icon=":material/block:")


def _draw(run_id: str, status: str, actor: Actor, key: str) -> None:
    cols = st.columns(3)

    def button(col: int, label: str, icon: str, verb: str, name: str, help: str | None = None
               ) -> None:
        cols[col].button(label, icon=icon, key=f"{key}{name}", width="stretch", help=help,
                         on_click=_press, args=(verb, run_id, actor, key))

    if status == "queued":  # where Stop will be once it starts
        button(1, "Cancel", ":material/cancel:", "stop", "cancel",
               "Take this run out of the queue")
    elif status in ACTIVE:
        if status == "paused":
            button(0, "Resume", ":material/play_arrow:", "unpause", "resume")
        else:
            button(0, "Pause", ":material/pause:", "pause", "pause")
        button(1, "Stop", ":material/stop:", "stop", "stop")
    else:
        button(0, "Resume", ":material/play_arrow:", "resume", "continue",
               "Continue from the last checkpoint; the curves go on where they stopped")
