"""Collapse-lab lessons: runs that reproduce a classic failure, and checks on what they measure.

A lesson is a YAML file in ``assets/lessons/``::

    title: SimSiam with and without its stop-gradient
    teaches: A few sentences shown before the runs.
    explains: What the outcome means, shown after the runs.   # optional
    base: {train.max_seconds: 60}               # overrides shared by every run
    runs:
      - {name: healthy, set: {method.name: simsiam}}
      - {name: no stop-gradient, set: {method.name: simsiam, method.stop_gradient: false}}
    checks:
      - {run: no stop-gradient, metric: alarm, op: "==", value: complete,
         says: the alarm reports complete collapse}
      - {run: healthy, metric: knn_top1, op: ">", than: {run: no stop-gradient}, margin: 0.05}

A check compares a run's metric with a ``value`` or with another run's metric (``than``;
same metric unless it names one) plus a ``margin``. Metrics come from
:func:`engine.lesson_metrics.run_metrics`.
``fast: true`` marks a lesson cheap enough for the default test suite. ``predict:`` poses a
question before the runs (:mod:`engine.predictions`); a lesson that asks one keeps its answer
out of ``teaches`` and says it in ``explains`` (predict, observe, explain).

Two-stage lessons: ``model.init_from: "@NAME"`` starts a run from the encoder of the lesson's
earlier run ``NAME`` (resolved to its run directory when it has finished). A check may
subtract another run's value of the same metric, on either side (``minus: RUN``; in ``than``,
``{run: A, minus: B}``): "the accuracy SupCon loses to label noise is smaller than
cross-entropy's". A lesson whose runs start from pretrained weights that are not on this
machine is skipped with the reason (how to get them), not failed.

``python -m engine lesson NAME`` runs one by name (from ``assets/lessons/``) or from a path to
a YAML file; it exits 1 when an expected outcome was not reproduced.
"""

from __future__ import annotations

import operator
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.config import RunConfig
from engine.lesson_metrics import METRICS, known_metric, run_metrics
from engine.predictions import Prediction, parse_prediction
from engine.train.runner import Runner, run_foreground
from engine.train.store import RunDir, RunStore

#: the lessons folder; ``SSL_STUDIO_LESSONS`` names another (a workshop's own lessons)
LESSONS_DIR = Path(os.environ.get("SSL_STUDIO_LESSONS")
                   or Path(__file__).resolve().parents[1] / "assets" / "lessons")

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}

@dataclass
class Check:
    run: str
    metric: str
    op: str
    value: Any = None
    than: dict | None = None
    margin: float = 0.0
    says: str = ""
    minus: str | None = None  # another run whose value of the metric is subtracted

    def describe(self) -> str:
        if self.says:
            return self.says
        rhs = (f"{self.than.get('metric', self.metric)} of {self.than['run']}"
               + (f" + {self.margin:g}" if self.margin else "")) if self.than else repr(self.value)
        return f"{self.metric} of {self.run} {self.op} {rhs}"


@dataclass
class Lesson:
    name: str
    title: str
    teaches: str
    runs: list[dict]  # {name, set}
    checks: list[Check]
    base: dict = field(default_factory=dict)
    fast: bool = False  # cheap enough for the default test suite
    predict: Prediction | None = None  # the question posed before the runs (predict, then run)
    explains: str = ""  # what the outcome means: shown once the runs are done
    #: settings forced on every run, over its own (``python -m engine lesson NAME seed=1``)
    overrides: dict = field(default_factory=dict)

    def config(self, run_name: str, done: dict[str, RunDir] | None = None) -> RunConfig:
        """The run's settings; ``"@NAME"`` values become the directory of the earlier run
        ``NAME`` in ``done`` ("" while it has not run: a random start, for validation)."""
        spec = next(r for r in self.runs if r["name"] == run_name)
        overrides = {**self.base, **spec.get("set", {}), **self.overrides}
        overrides = {k: _resolve(v, done or {}) for k, v in overrides.items()}
        cfg = RunConfig().with_overrides(overrides)
        return cfg.with_overrides({"name": f"{self.name}: {run_name}"})

    def run_names(self) -> list[str]:
        return [r["name"] for r in self.runs]

    def skip_reason(self) -> str | None:
        """Why this lesson cannot run on this machine (pretrained weights it starts from are
        missing: the message says how to get them), or None."""
        from engine.models.pretrained import weights_path

        for name in self.run_names():
            model = self.config(name).model
            if model.pretrained:
                try:
                    weights_path(model.pretrained, model.backbone)
                except ValueError as exc:
                    return f"run {name!r}: {exc}"
        return None


def _resolve(value: Any, done: dict[str, RunDir]) -> Any:
    """A ``"@NAME"`` reference to an earlier run as that run's directory ("" before it ran)."""
    if isinstance(value, str) and value.startswith("@"):
        run = done.get(value[1:])
        return "" if run is None else str(run.path)
    return value


def list_lessons() -> list[str]:
    return sorted(p.stem for p in LESSONS_DIR.glob("*.yaml"))


def lesson_path(name: str | Path) -> Path:
    """The YAML file of a lesson: a name in ``LESSONS_DIR``, or a path to a ``.yaml`` file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    path = LESSONS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown lesson {str(name)!r}; known: {', '.join(list_lessons())}")
    return path


def _parse_check(lesson: str, d: Any, names: list[str]) -> Check:
    if not isinstance(d, dict):
        raise ValueError(f"lesson {lesson}: each check must be a mapping, got {d!r}")
    try:
        c = Check(**d)
    except TypeError as exc:
        raise ValueError(f"lesson {lesson}: bad check {d!r}: {exc}") from None
    if (c.value is None) == (c.than is None):
        raise ValueError(f"lesson {lesson}: a check needs exactly one of value or than: {d!r}")
    if c.than is not None and not isinstance(c.than, dict):
        raise ValueError(f"lesson {lesson}: than must be {{run: NAME}}, got {c.than!r}")
    for ref in (c.run, (c.than or {}).get("run", c.run), c.minus or c.run,
                (c.than or {}).get("minus") or c.run):
        if ref not in names:
            raise ValueError(f"lesson {lesson}: check refers to unknown run {ref!r}")
    for metric in (c.metric, (c.than or {}).get("metric", c.metric)):
        if not known_metric(metric):
            raise ValueError(f"lesson {lesson}: unknown metric {metric!r}; known: "
                             f"{', '.join(sorted(METRICS))}, knn_<attribute>")
    if c.op not in _OPS:
        raise ValueError(f"lesson {lesson}: unknown operator {c.op!r}")
    if not isinstance(c.margin, int | float):
        raise ValueError(f"lesson {lesson}: margin must be a number, got {c.margin!r}")
    return c


def _paragraphs(text: Any) -> str:
    """A folded YAML block keeps one newline per blank line: make each a paragraph break."""
    return "\n\n".join(p.strip() for p in str(text).splitlines() if p.strip())


def load_lesson(name: str | Path) -> Lesson:
    """Read and validate a lesson (by name or path): every run's settings and every check's
    runs and metrics are checked now, not mid-lesson. Raises ``ValueError`` saying what is
    wrong."""
    path = lesson_path(name)
    name = path.stem
    d = yaml.safe_load(path.read_text())
    if not isinstance(d, dict):
        raise ValueError(f"lesson {name}: the file must hold a mapping")
    missing = [k for k in ("title", "teaches", "runs") if not d.get(k)]
    if missing:
        raise ValueError(f"lesson {name}: missing {', '.join(missing)}")
    unknown = set(d) - {"title", "teaches", "explains", "runs", "checks", "base", "fast",
                        "predict"}
    if unknown:
        raise ValueError(f"lesson {name}: unknown key(s) {', '.join(sorted(unknown))}")
    runs = d["runs"]
    if not isinstance(runs, list) or not all(isinstance(r, dict) and r.get("name")
                                             for r in runs):
        raise ValueError(f"lesson {name}: runs must be a list of {{name, set}} mappings")
    names = [str(r["name"]) for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"lesson {name}: run names must be unique, got {names}")
    lesson = Lesson(
        name=name,
        title=str(d["title"]),
        teaches=_paragraphs(d["teaches"]),
        explains=_paragraphs(d.get("explains") or ""),
        runs=runs,
        checks=[_parse_check(name, c, names) for c in d.get("checks") or []],
        base=d.get("base") or {},
        fast=bool(d.get("fast", False)),
        predict=None if d.get("predict") is None else parse_prediction(name, d["predict"], names),
    )
    for i, r in enumerate(lesson.runs):
        for key, value in (r.get("set") or {}).items():
            if isinstance(value, str) and value.startswith("@") and value[1:] not in names[:i]:
                raise ValueError(f"lesson {name}, run {r['name']!r}: {key}: {value} names no "
                                 "earlier run of the lesson")
        _validate_run(lesson, r["name"])
    return lesson


def _validate_run(lesson: Lesson, run_name: str) -> None:
    """Every setting of a run checked now, not mid-lesson (``engine.preflight.check_run``)."""
    from engine.preflight import check_run

    cfg = lesson.config(run_name)
    if cfg.model.pretrained:  # its weights may be missing here: skip_reason says so
        cfg = cfg.with_overrides({"model.pretrained": ""})
    try:
        check_run(cfg)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"lesson {lesson.name}, run {run_name!r}: {exc}") from None


@dataclass
class CheckResult:
    check: Check
    passed: bool
    left: Any
    right: Any

    def line(self) -> str:
        fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
        mark = "PASS" if self.passed else "FAIL"
        measured = f"{fmt(self.left)} {self.check.op} {fmt(self.right)}"
        return f"[{mark}] {self.check.describe()}: {measured}"


def evaluate_checks(lesson: Lesson, metrics: dict[str, dict[str, Any]]) -> list[CheckResult]:
    """Each check against the measured metrics of the lesson's runs (by run name)."""
    results = []
    def value(run: str, metric: str, minus: str | None) -> Any:
        v = metrics.get(run, {}).get(metric)
        if minus is None or v is None:
            return v
        w = metrics.get(minus, {}).get(metric)
        return None if w is None else v - w

    for c in lesson.checks:
        left = value(c.run, c.metric, c.minus)
        if c.than is not None:
            other = value(c.than["run"], c.than.get("metric", c.metric), c.than.get("minus"))
            right = None if other is None else other + c.margin
        else:
            right = c.value
        ok = left is not None and right is not None and bool(_OPS[c.op](left, right))
        results.append(CheckResult(c, ok, left, right))
    return results


def run_lesson(
    lesson: Lesson, store: RunStore, on_event: Any = None
) -> tuple[dict[str, RunDir], list[CheckResult]]:
    """Run every run of a lesson in turn (foreground) and evaluate its checks."""
    runs: dict[str, RunDir] = {}
    for name in lesson.run_names():
        run, _ = run_foreground(lesson.config(name, runs), store, on_event=on_event)
        runs[name] = run
    metrics = {name: run_metrics(run) for name, run in runs.items()}
    return runs, evaluate_checks(lesson, metrics)


def run_lesson_cli(name: str, runs_dir: str | None, quiet: bool = False,
                   overrides: dict[str, Any] | None = None) -> int:
    """``python -m engine lesson NAME [KEY=VALUE ...]``: prints each check with its number; 1
    if one fails. ``overrides`` are forced on every run (e.g. ``{"seed": 1}`` to repeat the
    lesson with another seed)."""
    lesson = load_lesson(name)
    if overrides:
        lesson.overrides = dict(overrides)
        for r in lesson.runs:
            _validate_run(lesson, r["name"])
    print(f"# {lesson.title}\n\n{lesson.teaches}\n")
    if lesson.predict is not None:
        print(f"Predict: {lesson.predict.question} ({' / '.join(lesson.predict.options)})\n")
    reason = lesson.skip_reason()
    if reason is not None:
        print(f"SKIPPED: {reason}")
        return 0
    store = RunStore(runs_dir)
    started = time.perf_counter()

    def progress(event: dict[str, Any]) -> None:
        if not quiet and event["type"] in ("finished", "failed"):
            print(f"  run {event['type']}: "
                  + (event.get("error") or f"{event.get('steps')} steps, "
                     f"kNN {event.get('knn_top1', float('nan')):.3f}"), file=sys.stderr)

    runs, results = run_lesson(lesson, store, on_event=progress)
    for run_name, run in runs.items():
        print(f"run {run_name!r}: {run.path}")
    if lesson.predict is not None:
        metrics = {n: run_metrics(r) for n, r in runs.items()}
        print(f"Answer: {lesson.predict.outcome(metrics)} "
              f"({lesson.predict.describe_answer()})")
    for r in results:
        print(r.line())
    passed = sum(r.passed for r in results)
    print(f"{passed} of {len(results)} expected outcomes reproduced in "
          f"{time.perf_counter() - started:.0f} s")
    if lesson.explains:
        print(f"\n{lesson.explains}")
    return 0 if passed == len(results) else 1


class LessonRunner:
    """A lesson's runs, one after another, in a background thread (for the UI).

    The thread only starts runs on the registry and waits for them; the UI follows each run
    through the registry like any other run (``run_ids`` maps run names to run ids).
    """

    def __init__(self, lesson: Lesson, registry: Any) -> None:
        self.lesson = lesson
        self.registry = registry
        self.run_ids: dict[str, str] = {}
        self.error: str | None = None
        #: why the lesson cannot run here (missing pretrained weights), set before any run
        self.skipped: str | None = None
        self.started = time.time()
        self._stop = threading.Event()
        self._current: Runner | None = None
        self._thread = threading.Thread(target=self._main, daemon=True,
                                        name=f"lesson-{lesson.name}")

    def start(self) -> LessonRunner:
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self.skipped = self.lesson.skip_reason()
            if self.skipped is not None:
                return
            done: dict[str, RunDir] = {}
            for name in self.lesson.run_names():
                if self._stop.is_set():
                    return
                self._current = self.registry.start(self.lesson.config(name, done))
                done[name] = self._current.run
                self.run_ids[name] = self._current.id
                self._current.join()
        except Exception as exc:  # noqa: BLE001 — shown on the page instead of a dead thread
            self.error = str(exc) or type(exc).__name__

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._current is not None:
            self._current.stop(timeout)
        self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def metrics(self) -> dict[str, dict[str, Any]] | None:
        """Every run's metrics (by run name) once every run has finished, else None."""
        if self.alive or len(self.run_ids) < len(self.lesson.runs):
            return None
        return {n: run_metrics(self.registry.run(i)) for n, i in self.run_ids.items()}

    def results(self) -> list[CheckResult] | None:
        """The checks once every run has finished, else None (still going, or stopped)."""
        metrics = self.metrics()
        return None if metrics is None else evaluate_checks(self.lesson, metrics)
