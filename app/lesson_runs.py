"""The lessons running in this process: one :class:`engine.lessons.LessonRunner` per lesson,
kept in ``st.cache_resource`` so a reload, a second tab or a page switch finds the lesson that
is running, and its results once it has ended. Sessions keep only lesson names."""

from __future__ import annotations

import threading

import streamlit as st

from app.state import registry, runs_root
from engine.lessons import Lesson, LessonRunner


@st.cache_resource(show_spinner=False)
def _runners(root: str) -> tuple[dict[str, LessonRunner], threading.Lock]:
    return {}, threading.Lock()


def runner_of(name: str) -> LessonRunner | None:
    """The latest runner of lesson ``name`` in this process (running or ended), if any."""
    runners, lock = _runners(runs_root())
    with lock:
        return runners.get(name)


def start_lesson(lesson: Lesson) -> LessonRunner:
    """Start the lesson's runs on the app's registry, unless it is already running."""
    runners, lock = _runners(runs_root())
    with lock:
        current = runners.get(lesson.name)
        if current is not None and current.alive:
            return current
        runners[lesson.name] = LessonRunner(lesson, registry()).start()
        return runners[lesson.name]
