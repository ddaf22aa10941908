"""Predict, then run, on the Lessons page: the lesson's question before its runs (the Run
button waits for an answer), the participant's answer against the measured outcome after
them, and the room's answers for the instructor. Answers live on disk
(:mod:`engine.predictions`), so every session and server process sees the same room."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import participants
from app.state import runs_root
from engine.lessons import Lesson
from engine.predictions import (
    Prediction,
    answer_of,
    answers,
    clear_answers,
    record_answer,
    tally,
)


def my_answer(lesson: Lesson) -> str | None:
    """This participant's recorded answer to the lesson's question (None before one)."""
    if lesson.predict is None:
        return None
    return answer_of(runs_root(), lesson.name, participants.name())


def ask(lesson: Lesson) -> None:
    """The question, a choice among its options and a button that records the answer; once
    recorded, the answer (which may still be changed before the runs)."""
    p = lesson.predict
    if p is None:
        return
    st.markdown(f"#### :material/psychology_alt: Predict first\n{p.question}")
    mine = my_answer(lesson)
    choice = st.radio("Your prediction", p.options, key=f"predict_{lesson.name}",
                      index=p.options.index(mine) if mine in p.options else None,
                      horizontal=True)
    cols = st.columns([1, 4], vertical_alignment="center")
    label = "Record my prediction" if mine is None else "Change my prediction"
    if cols[0].button(label, key=f"predict_save_{lesson.name}", disabled=choice is None,
                      width="stretch"):
        record_answer(runs_root(), lesson.name, participants.name(), choice)
        st.rerun()
    if mine is not None:
        cols[1].markdown(f"Your prediction: **{mine}**")
    else:
        cols[1].caption("Choose an answer and record it; then the lesson can run.")


def outcome(lesson: Lesson, metrics: dict[str, dict[str, Any]] | None) -> None:
    """After the runs: the right answer (measured where the lesson says so) against this
    participant's, and the room's answers."""
    p = lesson.predict
    if p is None or metrics is None:
        return
    right = p.outcome(metrics)
    mine = my_answer(lesson)
    st.markdown("#### Your prediction against the outcome")
    if right is None:
        st.warning(f"The outcome could not be decided: {p.describe_answer()} was not measured "
                   "on every run.")
    else:
        evidence = _evidence(p, metrics)
        if mine is None:
            st.info(f"**Outcome: {right}** ({p.describe_answer()}{evidence}). You made no "
                    "prediction.")
        elif mine == right:
            st.success(f"**You predicted {mine}: right.** Outcome: {right} "
                       f"({p.describe_answer()}{evidence}).", icon=":material/check:")
        else:
            st.warning(f"**You predicted {mine}; the outcome: {right}** "
                       f"({p.describe_answer()}{evidence}).", icon=":material/lightbulb:")
    room(lesson, right)


def _evidence(p: Prediction, metrics: dict[str, dict[str, Any]]) -> str:
    if p.metric is None:
        return ""
    values = [(run, metrics.get(run, {}).get(p.metric)) for run in p.options]
    return ": " + ", ".join(f"{run} {v:.3f}" if isinstance(v, float) else f"{run} {v}"
                            for run, v in values)


def room(lesson: Lesson, right: str | None = None) -> None:
    """How many chose each option: for the instructor always, with each name and a button
    that clears the round's answers; for a participant once the outcome is known."""
    p = lesson.predict
    if p is None:
        return
    instructor = participants.actor().instructor
    if right is None and not instructor:
        return
    counts = tally(runs_root(), lesson.name, p.options)
    total = sum(counts.values())
    st.markdown(f"**The room's predictions** ({total} answer{'s' * (total != 1)})")
    lines = []
    for option in p.options:
        share = f"{counts[option] / total:.0%}" if total else "–"
        mark = " ✓" if option == right else ""
        lines.append(f"- {option}{mark}: {counts[option]} ({share})")
    st.markdown("\n".join(lines))
    if instructor:
        with st.expander("Who answered what"):
            entries = answers(runs_root(), lesson.name)
            st.markdown("\n".join(f"- {who}: {e.get('answer')}" for who, e in
                                  sorted(entries.items())) or "No answers yet.")
        if st.button("Clear the room's predictions", key=f"predict_clear_{lesson.name}",
                     icon=":material/delete_sweep:"):
            clear_answers(runs_root(), lesson.name)
            st.rerun()
