"""Predict, then run: a lesson's question, the participants' answers, and the outcome.

A workshop learns more from a result it predicted wrongly than from one it was shown
(predict-observe-explain; White & Gunstone 1992, "Probing Understanding"). A lesson may
therefore pose its question before its runs train::

    predict:
      question: Which run ends with the better shape kNN?
      options: [batch-hard, batch-all]       # default: the lesson's run names
      answer: {highest: knn_top1}            # or {lowest: METRIC}, or one of the options

With ``{highest: METRIC}`` / ``{lowest: METRIC}`` the right answer is not written down but
measured: the run whose metric (any name a check may use) came out highest or lowest, so the
options must be run names. A fixed answer names one option.

Answers are kept on disk, one JSON file per lesson under ``<runs root>/_lesson_answers/``, so
every browser session and every server process sees the room's answers; one answer per
participant name (a later one replaces it). Writes take a file lock and replace the file
atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.lesson_metrics import known_metric
from engine.train.participants import normalise_name
from engine.train.store import atomic_write_json

ANSWERS_DIR = "_lesson_answers"
#: what a lesson name looks like here (a file name, never a path)
LESSON_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_MEASURED = ("highest", "lowest")


@dataclass(frozen=True)
class Prediction:
    """A lesson's question, its options, and how its answer is known."""

    question: str
    options: tuple[str, ...]
    answer: str | None = None  # a fixed answer: one of ``options``
    metric: str | None = None  # a measured answer: the run with the extreme ``metric``
    highest: bool = True  # ... the highest (else the lowest)

    def describe_answer(self) -> str:
        """How the right answer is decided, for the page after the runs."""
        if self.metric is None:
            return f"the answer is {self.answer}"
        return f"the run with the {'highest' if self.highest else 'lowest'} {self.metric}"

    def outcome(self, metrics: dict[str, dict[str, Any]]) -> str | None:
        """The right option: the fixed answer, or the run whose metric came out highest
        (lowest); None while a run's metric is missing (not finished, or not measured)."""
        if self.metric is None:
            return self.answer
        values = {run: metrics.get(run, {}).get(self.metric) for run in self.options}
        if any(not isinstance(v, int | float) for v in values.values()):
            return None
        pick = max if self.highest else min
        return pick(values, key=lambda run: values[run])


def parse_prediction(lesson: str, d: Any, run_names: list[str]) -> Prediction:
    """A lesson's ``predict:`` mapping, validated; ``ValueError`` saying what is wrong."""
    if not isinstance(d, dict):
        raise ValueError(f"lesson {lesson}: predict must be a mapping, got {d!r}")
    unknown = set(d) - {"question", "options", "answer"}
    if unknown:
        raise ValueError(f"lesson {lesson}: predict has unknown key(s) "
                         f"{', '.join(sorted(unknown))}")
    question = str(d.get("question") or "").strip()
    if not question:
        raise ValueError(f"lesson {lesson}: predict needs a question")
    options = d.get("options") or run_names
    if not isinstance(options, list) or len(options) < 2:
        raise ValueError(f"lesson {lesson}: predict needs a list of at least 2 options")
    options = tuple(str(o) for o in options)
    if len(set(options)) != len(options):
        raise ValueError(f"lesson {lesson}: predict's options must be unique, got {options}")
    answer = d.get("answer")
    if isinstance(answer, dict):
        if len(answer) != 1 or next(iter(answer)) not in _MEASURED:
            raise ValueError(f"lesson {lesson}: a measured answer is {{highest: METRIC}} or "
                             f"{{lowest: METRIC}}, got {answer!r}")
        (kind, metric), = answer.items()
        if not known_metric(str(metric)):
            raise ValueError(f"lesson {lesson}: predict's answer names unknown metric "
                             f"{metric!r}")
        strangers = [o for o in options if o not in run_names]
        if strangers:
            raise ValueError(f"lesson {lesson}: a measured answer picks a run, so every "
                             f"option must be a run name; not runs: {', '.join(strangers)}")
        return Prediction(question, options, metric=str(metric), highest=kind == "highest")
    if answer is None or str(answer) not in options:
        raise ValueError(f"lesson {lesson}: predict's answer must be one of its options "
                         f"{list(options)} or {{highest|lowest: METRIC}}, got {answer!r}")
    return Prediction(question, options, answer=str(answer))


# -- the answer store -------------------------------------------------------------------------
def answers_path(root: str | Path, lesson: str) -> Path:
    if not LESSON_NAME.fullmatch(lesson):
        raise ValueError(f"not a lesson name: {lesson!r}")
    return Path(root) / ANSWERS_DIR / f"{lesson}.json"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes for a read-modify-write of ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def answers(root: str | Path, lesson: str) -> dict[str, dict[str, Any]]:
    """Every participant's answer to the lesson's question: name -> {answer, time}."""
    try:
        data = json.loads(answers_path(root, lesson).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def record_answer(root: str | Path, lesson: str, who: str, answer: str) -> None:
    """Keep ``who``'s answer (replacing an earlier one of the same name)."""
    who = normalise_name(who) or "anonymous"
    path = answers_path(root, lesson)
    with _locked(path):
        data = answers(root, lesson)
        data[who] = {"answer": str(answer), "time": time.time()}
        atomic_write_json(path, data)


def answer_of(root: str | Path, lesson: str, who: str) -> str | None:
    """``who``'s answer, or None before they gave one."""
    entry = answers(root, lesson).get(normalise_name(who) or "anonymous")
    return entry.get("answer") if isinstance(entry, dict) else None


def clear_answers(root: str | Path, lesson: str) -> None:
    """Forget every answer to the lesson (the instructor's fresh start for a new round)."""
    path = answers_path(root, lesson)
    with _locked(path):
        path.unlink(missing_ok=True)


def tally(root: str | Path, lesson: str, options: tuple[str, ...] | list[str]) -> Counter:
    """How many participants chose each option (every option present, 0 when nobody did;
    answers that are no longer options are left out)."""
    counts = Counter({o: 0 for o in options})
    for entry in answers(root, lesson).values():
        choice = entry.get("answer") if isinstance(entry, dict) else None
        if choice in counts:
            counts[choice] += 1
    return counts
