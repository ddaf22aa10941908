"""Command-line tools for a run's encoder and for sharing runs (``engine.cli`` adds them):

    python -m engine eval RUN_ID [--data digits] [--set data.test_size=500]
    python -m engine export RUN_ID --out DIR [--embeddings] [--split test|train]
    python -m engine export-run RUN_ID [--out DIR_OR_ZIP] [--no-thumbnails] [--no-checkpoint]
    python -m engine import-run ARCHIVE.zip [--runs-dir runs]

Each prints one JSON object; a bad run id, a run without a checkpoint or a damaged archive end
with one line and exit status 2 (``engine.cli.main``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--data NAME`` and ``--set data.KEY=VALUE`` as data settings (``{"name": ...}``)."""
    from engine.cli import parse_sets

    data = {}
    for key, value in parse_sets(args.set).items():
        section, _, name = key.rpartition(".")
        if section not in ("", "data"):
            raise ValueError(f"--set here takes data settings (data.KEY=VALUE), got {key!r}")
        data[name] = value
    if args.data:
        data["name"] = args.data
    return data


def _print(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.encoder.evaluate import evaluate_run
    from engine.train.store import RunStore

    store = RunStore(args.runs_dir)
    run, result = evaluate_run(store, args.run_id, data_overrides(args))
    _print({"run": run.id, "path": str(run.path),
            **{k: v for k, v in result.items() if k.startswith(("knn_", "linear_"))}})
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.encoder import export_encoder, load_encoder
    from engine.encoder.embeddings import export_embeddings
    from engine.train.store import RunStore

    enc = load_encoder(RunStore(args.runs_dir), args.run_id)
    report = export_encoder(enc, args.out, onnx=not args.no_onnx)
    if args.embeddings:
        out = Path(args.out) / "embeddings"
        report["embeddings"] = export_embeddings(enc, out, data_overrides(args), args.split)
    _print({"out": str(args.out), **report})
    return 0


def cmd_export_run(args: argparse.Namespace) -> int:
    from engine.share.archive import export_run
    from engine.train.store import RunStore

    run = RunStore(args.runs_dir).get(args.run_id)
    path = export_run(run, args.out, thumbnails=not args.no_thumbnails,
                      checkpoint=not args.no_checkpoint)
    _print({"archive": str(path), "bytes": path.stat().st_size})
    return 0


def cmd_import_run(args: argparse.Namespace) -> int:
    from engine.share.archive import import_run
    from engine.train.store import RunStore

    run = import_run(args.archive, RunStore(args.runs_dir))
    _print({"run": run.id, "path": str(run.path), "status": run.status()})
    return 0


def add_commands(sub: Any) -> None:
    """The four commands, on ``engine.cli``'s sub-parsers."""

    def runs_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--runs-dir", default=None, help="where run directories are "
                       "(default ./runs)")

    def data(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", default="", help="another data set (a registered name; a "
                       "folder: --data folder --set data.root=PATH)")
        p.add_argument("--set", action="append", default=[], metavar="data.KEY=VALUE",
                       help="a data setting, e.g. data.test_size=500 (repeatable)")

    p = sub.add_parser("eval", help="kNN, linear probe and a map of a run's checkpoint, on "
                       "its own data or another data set (a new run directory)")
    p.add_argument("run_id")
    data(p)
    runs_dir(p)
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("export", help="a run's encoder as a state_dict with a loader, "
                       "TorchScript (and ONNX), its preprocessing, and optionally embeddings")
    p.add_argument("run_id")
    p.add_argument("--out", required=True, help="the folder to write")
    p.add_argument("--embeddings", action="store_true",
                   help="also embed a data set split into <out>/embeddings/")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--no-onnx", action="store_true", help="do not try ONNX")
    data(p)
    runs_dir(p)
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("export-run", help="a run as one zip archive to hand to someone")
    p.add_argument("run_id")
    p.add_argument("--out", default=".", help="a folder (default .) or a .zip path")
    p.add_argument("--no-thumbnails", action="store_true",
                   help="leave out the map's images (the other side needs the data set)")
    p.add_argument("--no-checkpoint", action="store_true", help="leave out the weights")
    runs_dir(p)
    p.set_defaults(fn=cmd_export_run)

    p = sub.add_parser("import-run", help="add a run archive to a runs folder")
    p.add_argument("archive")
    runs_dir(p)
    p.set_defaults(fn=cmd_import_run)
