"""Command line: ``python -m engine train|list|bench|lesson ...`` — the same code path as the UI.

Examples::

    python -m engine train --set method.name=supcon --set train.max_seconds=60
    python -m engine train --config assets/runs/simclr_shapes.yaml --runs-dir runs
    python -m engine list methods
    python -m engine lesson byol_predictor
    python -m engine bench --set model.backbone=resnet18_cifar --set train.batch_size=512
    torchrun --nproc-per-node 2 -m engine train --set method.name=simclr

Settings left out are the engine's defaults, and the method's own recipe where it has one
(``engine.recipe``): ``--set method.name=X`` trains what the Train page trains for X. A run is
checked whole before anything is made for it; a bad one exits with status 2 and one line.
More example configurations: ``assets/runs/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.config import RunConfig


def parse_value(text: str) -> Any:
    """``--set`` values: JSON when it parses (numbers, true/false, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_config(path: str | None, sets: list[str]) -> RunConfig:
    """A RunConfig from an optional YAML/JSON file and ``KEY=VALUE`` overrides.

    Settings left out are the engine's defaults, and the method's own where the method has
    them (``engine.recipe``). Raises ``ValueError`` with one line naming the file or the key.
    """
    cfg = RunConfig()
    if path:
        data = read_config_file(path)
        try:
            cfg = RunConfig.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    overrides = parse_sets(sets)
    return cfg.with_overrides(overrides) if overrides else cfg


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``) or JSON run configuration file; ``ValueError``
    naming the file and the line when it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"{path}: cannot read the file ({reason})") from None
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ValueError(f"{path}: not valid YAML{where}: {problem}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: "
                             f"{exc.msg}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a run configuration is a mapping of sections (data, model, "
                         f"augment, method, train, eval), not a {type(data).__name__}")
    return data


def parse_sets(sets: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as overrides for ``RunConfig.with_overrides``."""
    overrides = {}
    for item in sets:
        if "=" not in item:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = parse_value(value.strip())
    return overrides


def _names(kind: str) -> list[str]:
    if kind == "datasets":
        from engine.data import DATASETS

        return DATASETS.names()
    if kind == "backbones":
        from engine.models import BACKBONES

        return BACKBONES.names()
    if kind == "methods":
        from engine.methods import METHODS

        return METHODS.names()
    if kind == "presets":
        from engine.augment import list_presets

        return list_presets()
    if kind == "lessons":
        from engine.lessons import list_lessons

        return list_lessons()
    raise ValueError(f"unknown list {kind!r}")


class _Progress:
    """A tqdm bar over steps, with the latest loss and kNN accuracy."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.knn: float | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        kind = event["type"]
        if kind == "start":
            print(f"device {event['device']} ({event['precision']}), "
                  f"{event['parameters']:,} parameters, "
                  f"{event['dataset']['train']} train / {event['dataset']['test']} test images",
                  file=sys.stderr)
            self.bar = tqdm(total=event["total_steps"] or None, unit="step", file=sys.stderr)
        elif kind == "step" and self.bar is not None:
            self.bar.update(event["step"] - self.bar.n)
            post = {"loss": f"{event['loss']:.4f}", "img/s": f"{event['images_per_s']:.0f}"}
            if self.knn is not None:
                post["knn"] = f"{self.knn:.3f}"
            self.bar.set_postfix(post)
        elif kind == "eval":
            self.knn = event.get("knn_top1")
        elif kind in ("finished", "failed") and self.bar is not None:
            self.bar.close()


def prepare_run(cfg: RunConfig) -> Any:
    """Check the whole run and load its data before anything is made for it; returns the data
    set. Prints a note for a method that means little on the data, and the files skipped."""
    from engine.data import load_dataset, progress
    from engine.methods import METHODS
    from engine.preflight import check_run

    check_run(cfg)
    with progress.reporting(lambda message: print(message, file=sys.stderr, flush=True)):
        dataset = load_dataset(cfg.data)
    check_run(cfg, dataset)
    caveat = METHODS.get(cfg.method.name).data_caveats.get(cfg.data.name)
    if caveat:
        print(f"note: {caveat}", file=sys.stderr)
    if dataset.skipped:
        names = ", ".join(e.split(" (")[0] for e in dataset.skipped_examples)
        more = ", ..." if dataset.skipped > len(dataset.skipped_examples) else ""
        print(f"skipped {dataset.skipped} unreadable file(s): {names}{more}", file=sys.stderr)
    return dataset


def report(run: Any, last: dict[str, Any]) -> int:
    """Print a finished run's summary as JSON; the exit status (1 when it failed)."""
    summary = run.summary()
    print(json.dumps({"run": str(run.path), **{k: v for k, v in summary.items()
                                                 if k not in ("dataset", "traceback")}},
                     indent=2, sort_keys=True))
    if last.get("type") == "failed":
        print(f"run failed: {last['error']}", file=sys.stderr)
        return 1
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from engine.encoder.parent import parent_in
    from engine.train.runner import run_foreground
    from engine.train.store import RunStore

    cfg = parent_in(load_config(args.config, args.set), RunStore(args.runs_dir))
    from engine.distributed import launched

    if launched():  # one of torchrun's processes: rank 0 writes the run (engine.distributed)
        from engine.distributed import leave
        from engine.train.distributed_run import train

        leave(train(cfg, args.runs_dir, _Progress(args.quiet), prepare=prepare_run))
    dataset = prepare_run(cfg)
    store = RunStore(args.runs_dir)
    run, last = run_foreground(cfg, store, on_event=_Progress(args.quiet), dataset=dataset)
    return report(run, last)


def cmd_list(args: argparse.Namespace) -> int:
    for name in _names(args.kind):
        print(name)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.bench import bench

    cfg = load_config(args.config, args.set)
    print(json.dumps(bench(cfg, steps=args.steps, warmup=args.warmup), sort_keys=True))
    return 0


def cmd_lesson(args: argparse.Namespace) -> int:
    from engine.lessons import run_lesson_cli

    return run_lesson_cli(args.name, args.runs_dir, quiet=args.quiet,
                          overrides=parse_sets(args.settings))


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue a stopped or interrupted run from its checkpoint, in the same directory."""
    from engine.train.runner import resume_foreground
    from engine.train.store import RunStore

    run = RunStore(args.runs_dir).get(args.run_id)
    from engine.distributed import launched

    if launched():  # resumed by torchrun's processes, any number of them
        from engine.distributed import leave
        from engine.train.distributed_run import train

        leave(train(run.config(), args.runs_dir, _Progress(args.quiet), resume_id=run.id))
    run, last = resume_foreground(run, on_event=_Progress(args.quiet))
    return report(run, last)


def cmd_sweep(args: argparse.Namespace) -> int:
    from engine.train.registry import Actor, RunRegistry
    from engine.train.store import RunStore
    from engine.train.sweep import Sweep, format_table, run_sweep

    cfg = load_config(args.config, args.set)
    budget = None if args.budget is not None and args.budget <= 0 else args.budget
    sweep = Sweep.new(cfg, args.mode, args.ops or None, budget, owner="cli")
    registry = RunRegistry(RunStore(args.runs_dir))
    sweep.save(registry.store.root)
    print(f"sweep {sweep.id}: {len(sweep.cells)} runs, "
          f"{'the base budget' if budget is None else f'{budget:g} s'} each, seed {cfg.seed}",
          flush=True)

    def show(rows: list[dict[str, Any]]) -> None:
        if not args.quiet:
            print(format_table(sweep, rows) + "\n", flush=True)

    try:
        rows = run_sweep(sweep, registry, Actor("cli", instructor=True), on_update=show)
    except KeyboardInterrupt:
        registry.stop_all()
        return 130
    print(format_table(sweep, rows))
    return 0 if all(r["status"] == "finished" for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="a YAML or JSON run configuration")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting, e.g. train.epochs=5 (repeatable)")

    p = sub.add_parser("train", help="train a run in the foreground")
    common(p)
    p.add_argument("--runs-dir", default=None, help="where run directories go (default ./runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("list", help="registered names, one a line")
    p.add_argument("kind", choices=["datasets", "backbones", "methods", "presets", "lessons"])
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("bench", help="time training steps; prints one JSON object")
    common(p)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("lesson", help="run a collapse-lab lesson headless and check it "
                       "(exit status 1 when an expected outcome is not reproduced)")
    p.add_argument("name", help="a lesson (python -m engine list lessons) or a lesson YAML file")
    p.add_argument("settings", nargs="*", metavar="KEY=VALUE",
                   help="forced on every run of the lesson, e.g. seed=1")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_lesson)

    p = sub.add_parser("resume", help="continue a stopped or interrupted run from its "
                       "checkpoint, in the same run directory")
    p.add_argument("run_id", help="the run's id (its directory name)")
    p.add_argument("--runs-dir", default=None, help="where run directories are (default ./runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_resume)

    p = sub.add_parser("sweep", help="augmentation ablation: leave one op out at a time, or "
                       "every pair of ops (SimCLR figure 5), same seed and budget per run")
    common(p)
    p.add_argument("--mode", choices=["leave_one_out", "pairs"], default="leave_one_out")
    p.add_argument("--ops", nargs="*", default=[], metavar="OP",
                   help="the ops to vary (default: every op the base applies)")
    p.add_argument("--budget", type=float, default=90.0,
                   help="seconds of training per run (default 90; 0 = the base's own)")
    p.add_argument("--runs-dir", default=None, help="where run directories go (default ./runs)")
    p.add_argument("--quiet", action="store_true", help="only the final table")
    p.set_defaults(fn=cmd_sweep)

    from engine.cli_tools import add_commands

    add_commands(sub)  # eval, export, export-run, import-run
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, OSError) as exc:  # a bad setting, file or folder: one line, status 2
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
