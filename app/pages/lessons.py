"""Lessons: the collapse lab. Pick a lesson, read what it teaches, run it and watch its runs
side by side; when it ends, each expected outcome is marked reproduced or not, with the
numbers measured (the same checks as ``python -m engine lesson NAME``)."""

from __future__ import annotations

import streamlit as st

from app import clicks, lesson_predict, live, participants
from app.lesson_runs import runner_of, start_lesson
from engine.lessons import CheckResult, Lesson, LessonRunner, list_lessons, load_lesson

POLL_SECONDS = 1.0
PICKER = "lesson_name"


def pick_lesson() -> Lesson | None:
    names = list_lessons()
    if not names:
        st.info("No lessons found in assets/lessons/.")
        return None
    titles: dict[str, str] = {}
    for name in names:
        try:
            titles[name] = load_lesson(name).title
        except ValueError as exc:
            titles[name] = f"{name} (invalid: {exc})"
    wanted = st.query_params.get("lesson")
    if st.session_state.get(PICKER) not in (None, *names):
        del st.session_state[PICKER]
    index = names.index(wanted) if wanted in names else 0
    name = st.selectbox("Lesson", names, index=index, key=PICKER,
                        format_func=lambda n: titles.get(n, n))
    if st.query_params.get("lesson") != name:
        st.query_params["lesson"] = name
    try:
        return load_lesson(name)
    except ValueError as exc:
        st.error(f"**This lesson cannot be loaded:** {exc}")
        return None


def describe(lesson: Lesson, reveal: bool) -> None:
    """The lesson's text, runs and expected outcomes; ``reveal`` False keeps the outcomes
    (which answer the lesson's question) back until the participant has predicted."""
    st.markdown(f"### {lesson.title}")
    st.markdown(lesson.teaches)
    left, right = st.columns(2)
    with left:
        st.markdown("**Runs**")
        for spec in lesson.runs:
            settings = ", ".join(f"`{k}={v}`" for k, v in spec.get("set", {}).items())
            st.markdown(f"- **{spec['name']}**: {settings or 'the shared settings'}")
        configs = [lesson.config(n) for n in lesson.run_names()]
        budget = sum(c.train.max_seconds for c in configs if c.train.epochs > 0)
        if budget:
            st.caption(f"At most about {budget / 60:.1f} min of training in all, one run after "
                       "another (less on a fast machine).")
    with right:
        st.markdown("**Expected outcomes**")
        if not reveal:
            st.caption("Shown once you have recorded your prediction below.")
            return
        st.markdown("\n".join(f"- {c.describe()}" for c in lesson.checks) or "–")


def controls(lesson: Lesson, runner: LessonRunner | None, alive: bool) -> None:
    """Stop while the lesson is going (``alive``, as the page read it once), else Run."""
    cols = st.columns([1, 1, 3])
    if runner is not None and alive:
        if cols[0].button("Stop", icon=":material/stop:", key="lesson_stop", width="stretch"):
            with st.spinner("Stopping…"):
                runner.stop(timeout=20)
            st.rerun()
        return
    label = "Run this lesson" if runner is None else "Run it again"
    waiting = lesson.predict is not None and lesson_predict.my_answer(lesson) is None
    clicks.button(cols[0], label, "lesson_run", icon=":material/play_arrow:", type="primary",
                  width="stretch", disabled=waiting,
                  help="Record your prediction first." if waiting else None)
    if clicks.take("lesson_run"):
        start_lesson(lesson)
        st.rerun()


def runs_side_by_side(name: str) -> None:
    """Every run of the lesson in its own column; polls while the lesson is going and reruns
    the page once when it ends (so the results and the buttons follow)."""
    runner = runner_of(name)
    if runner is None:
        return
    alive_key = f"lesson_alive_{name}"
    if st.session_state.get(alive_key) and not runner.alive:
        st.session_state[alive_key] = False
        st.rerun(scope="app")
    st.session_state[alive_key] = runner.alive
    if runner.error:
        st.error(f"**The lesson stopped:** {runner.error}")
    if runner.skipped:
        st.info(f"**Skipped on this machine:** {runner.skipped}", icon=":material/skip_next:")
        return
    run_names = runner.lesson.run_names()
    cols = st.columns(len(run_names), gap="medium")
    for i, (col, run_name) in enumerate(zip(cols, run_names, strict=True)):
        with col:
            st.markdown(f"#### {run_name}")
            run_id = runner.run_ids.get(run_name)
            if run_id is None:
                st.caption("Not started." if runner.stopped or not runner.alive
                           else "Waiting for its turn.")
            else:
                live.compact(run_id, key=f"lesson_{name}_{i}")


def results(runner: LessonRunner) -> None:
    checks = runner.results()
    if checks is None:
        if runner.stopped and not runner.alive:
            st.warning("The lesson was stopped before all its runs finished; run it again to "
                       "check its outcomes.")
        return
    passed = sum(r.passed for r in checks)
    st.markdown(f"#### Outcomes: {passed} of {len(checks)} reproduced")
    for r in checks:
        outcome(r)


def outcome(r: CheckResult) -> None:
    """One expected outcome, with the numbers measured on both sides of the comparison."""
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    c = r.check
    measured = f"{c.metric} of {c.run} = {fmt(r.left)}; {c.op} {fmt(r.right)}"
    if c.than is not None:
        other = c.than.get("metric", c.metric)
        margin = f" (incl. margin {c.margin:g})" if c.margin else ""
        measured += f", from {other} of {c.than['run']}{margin}"
    if r.passed:
        st.success(f"**Reproduced:** {c.describe()}  \n{measured}", icon=":material/check:")
    else:
        st.error(f"**Not reproduced:** {c.describe()}  \n{measured}", icon=":material/close:")


def main() -> None:
    st.title("Lessons")
    st.caption("The collapse lab: classic failures of self-supervised learning, reproduced in a "
               "few minutes on a CPU, with the diagnostics that detect them.")
    lesson = pick_lesson()
    if lesson is None:
        return
    reveal = (lesson.predict is None or lesson_predict.my_answer(lesson) is not None
              or participants.actor().instructor)
    describe(lesson, reveal)
    lesson_predict.ask(lesson)
    runner = runner_of(lesson.name)
    # read once: the buttons and the poller's idea of what the page shows must agree, or a
    # lesson ending in between leaves Stop on screen with no poll to redraw it
    alive = runner is not None and runner.alive
    st.session_state[f"lesson_alive_{lesson.name}"] = alive
    controls(lesson, runner, alive)
    if runner is None:
        st.info("Press **Run this lesson** to train its runs one after another and watch them "
                "side by side.")
        lesson_predict.room(lesson)
        return
    st.fragment(runs_side_by_side, run_every=POLL_SECONDS if alive else None)(
        lesson.name)
    if not reveal:
        st.info("Record your prediction above to see the outcomes and what they mean.")
        return
    results(runner)
    metrics = runner.metrics()
    if metrics is None:
        lesson_predict.room(lesson)
        return
    lesson_predict.outcome(lesson, metrics)
    if lesson.explains:
        st.markdown("#### What it means")
        st.markdown(lesson.explains)


main()
