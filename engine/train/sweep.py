"""Augmentation ablation sweeps: from one base run configuration, short runs that each change
only which augmentation ops are on, with the same seed and budget, through the run queue.

- ``leave_one_out``: the base, then the base without one op at a time;
- ``pairs``: every op alone and every pair of ops (SimCLR, Chen et al. 2020,
  https://arxiv.org/abs/2002.05709, figure 5): the diagonal of the grid is one op, the rest
  two.

A cell switches ops off with ``augment.disable`` (so ``config.json`` says what it left out), and
keeps everything else of the base, seed and budget included. A sweep is a small JSON file
beside the runs (``<runs>/_sweeps/<id>.json``) naming its cells and their runs; it submits its
cells through :meth:`RunRegistry.submit` as the participant's queue has room (:meth:`Sweep.pump`:
a participant may have only a few runs waiting at once), and its table reads each run's final
kNN from its summary as runs finish.

The CPU default (:data:`CPU_BUDGET_SECONDS` a run) keeps the leave-one-out sweep of the
``simclr`` preset (5 runs) within 10 minutes on a 2-core CPU, one run at a time.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.augment import resolve_views
from engine.config import RunConfig

MODES = ("leave_one_out", "pairs")
CPU_BUDGET_SECONDS = 90.0  # per run: 5 runs of about 110 s with evaluation, under 10 minutes
SWEEP_DIR = "_sweeps"
DONE = ("finished", "stopped", "failed", "interrupted")


@dataclass
class Cell:
    """One run of a sweep: which ops it keeps and drops, where it sits in the table.

    row, col: the cell's place (leave-one-out: the dropped op and ``""``; pairs: the two kept
    ops, equal on the diagonal); run_id: "" until submitted; error: why it was not.
    """

    label: str
    kept: list[str]
    dropped: list[str]
    row: str
    col: str
    run_id: str = ""
    error: str = ""  # why the cell could not be submitted (its checks failed)


def sweep_ops(base: RunConfig) -> list[str]:
    """The distinct ops the base configuration applies (``p > 0`` in some view), in order."""
    names: list[str] = []
    for view in resolve_views(base.augment):
        for op in view:
            if op["p"] > 0 and op["op"] not in names:
                names.append(op["op"])
    return names


def plan(base: RunConfig, mode: str, ops: list[str] | None = None) -> list[Cell]:
    """The cells of a sweep of ``base``. ops: the ops to vary (default :func:`sweep_ops`; each
    must be one the base applies). Raises ValueError for an unknown mode, an op the base does not
    apply, or fewer than two ops."""
    if mode not in MODES:
        raise ValueError(f"unknown sweep mode {mode!r}; known: {', '.join(MODES)}")
    applied = sweep_ops(base)
    chosen = list(applied) if ops is None else list(dict.fromkeys(ops))
    missing = [o for o in chosen if o not in applied]
    if missing:
        raise ValueError(f"the base configuration does not apply {', '.join(missing)}; it "
                         f"applies {', '.join(applied) or 'no op'}")
    if len(chosen) < 2:
        raise ValueError(f"a sweep needs at least two ops to vary, got {chosen or 'none'}")
    if mode == "leave_one_out":
        cells = [Cell("all ops", chosen, [], "(none)", "")]
        cells += [Cell(f"without {o}", [k for k in chosen if k != o], [o], o, "")
                  for o in chosen]
        return cells
    cells = []
    for a, b in itertools.combinations_with_replacement(chosen, 2):
        kept = [a] if a == b else [a, b]
        label = a if a == b else f"{a} + {b}"
        cells.append(Cell(label, kept, [o for o in chosen if o not in kept], a, b))
    return cells


def cell_config(base: RunConfig, cell: Cell, budget_seconds: float | None = None) -> RunConfig:
    """The run configuration of ``cell``: the base with the cell's dropped ops added to
    ``augment.disable``; seed and train settings the base's (``budget_seconds`` replaces
    ``train.max_seconds`` of every cell alike)."""
    disable = tuple(dict.fromkeys([*base.augment.disable, *cell.dropped]))
    overrides: dict[str, Any] = {"augment.disable": disable}
    if budget_seconds is not None:
        overrides["train.max_seconds"] = float(budget_seconds)
    name = f"{base.name} · {cell.label}" if getattr(base, "name", "") else cell.label
    overrides["name"] = name
    return base.with_overrides(overrides)


@dataclass
class Sweep:
    """A sweep on disk: its base configuration (as a dict), mode, budget and cells."""

    id: str
    mode: str
    base: dict[str, Any]
    budget_seconds: float | None
    cells: list[Cell]
    owner: str = ""
    created: float = field(default_factory=time.time)

    @classmethod
    def new(cls, base: RunConfig, mode: str, ops: list[str] | None = None,
            budget_seconds: float | None = CPU_BUDGET_SECONDS, owner: str = "") -> Sweep:
        cells = plan(base, mode, ops)
        sweep_id = time.strftime("%Y%m%d-%H%M%S") + f"-{mode}-{int(time.time() * 1e3) % 1000:03d}"
        return cls(sweep_id, mode, base.to_dict(), budget_seconds, cells, owner)

    # -- disk ---------------------------------------------------------------------------------
    @staticmethod
    def path(root: Path, sweep_id: str) -> Path:
        return Path(root) / SWEEP_DIR / f"{sweep_id}.json"

    def save(self, root: Path) -> Path:
        from engine.train.store import atomic_write_json

        path = self.path(root, self.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, asdict(self))
        return path

    @classmethod
    def load(cls, root: Path, sweep_id: str) -> Sweep:
        """The sweep ``sweep_id`` under the runs root; FileNotFoundError naming it."""
        path = cls.path(root, sweep_id)
        if not path.is_file():
            raise FileNotFoundError(f"no sweep {sweep_id!r} in {Path(root) / SWEEP_DIR}")
        data = json.loads(path.read_text(encoding="utf-8"))
        data["cells"] = [Cell(**c) for c in data["cells"]]
        return cls(**data)

    @classmethod
    def list(cls, root: Path) -> list[str]:
        """Sweep ids under the runs root, newest first."""
        d = Path(root) / SWEEP_DIR
        return sorted((p.stem for p in d.glob("*.json")), reverse=True) if d.is_dir() else []

    # -- runs ---------------------------------------------------------------------------------
    def config(self, cell: Cell) -> RunConfig:
        return cell_config(RunConfig.from_dict(self.base), cell, self.budget_seconds)

    def pending(self) -> list[Cell]:
        return [c for c in self.cells if not c.run_id and not c.error]

    def pump(self, registry: Any, actor: Any, dataset: Any = None) -> int:
        """Submit pending cells in order until the queue refuses one (the participant's cap);
        a cell that fails its checks (ValueError) keeps the reason in ``error``. Saves the
        sweep when anything changed; returns how many runs were submitted."""
        submitted, changed = 0, False
        for cell in self.pending():
            try:
                cell.run_id = registry.submit(self.config(cell), actor, dataset)
            except PermissionError:
                break
            except ValueError as exc:
                cell.error, changed = str(exc), True
                continue
            submitted += 1
        if submitted or changed:
            self.save(registry.store.root)
        return submitted

    def table(self, store: Any) -> list[dict[str, Any]]:
        """One row per cell: ``label``, ``row``, ``col``, ``kept``, ``dropped``, ``run_id``,
        ``status`` (``pending`` before submission) and ``knn`` (the final kNN top-1 of a
        finished run, else None)."""
        rows = []
        for c in self.cells:
            status, knn = ("not run" if c.error else "pending"), None
            if c.run_id:
                try:
                    run = store.get(c.run_id)
                    status = run.status()
                    summary = run.summary()
                    if status == "finished":
                        knn = summary.get("knn_top1")
                except (FileNotFoundError, ValueError):
                    status = "deleted"
            rows.append({"label": c.label, "row": c.row, "col": c.col, "kept": c.kept,
                         "dropped": c.dropped, "run_id": c.run_id, "status": status,
                         "knn": knn, "error": c.error})
        return rows

    def done(self, store: Any, rows: list[dict[str, Any]] | None = None) -> bool:
        """Whether every cell's run has ended; ``rows``: its :meth:`table`, when read already."""
        rows = self.table(store) if rows is None else rows
        return all(r["status"] in (*DONE, "deleted", "not run") for r in rows)


# -- reading a sweep's results ------------------------------------------------------------------
def format_table(sweep: Sweep, rows: list[dict[str, Any]]) -> str:
    """The results as text: leave-one-out, one line per cell with its change from "all ops";
    pairs, the grid of kNN (row op x column op, the diagonal an op alone)."""
    def num(v: float | None) -> str:
        return "  -  " if v is None else f"{v:.3f}"

    if sweep.mode == "leave_one_out":
        ref = rows[0]["knn"]
        width = max(len(r["label"]) for r in rows)
        lines = [f"{'cell':<{width}}  kNN    change  status    run"]
        for r in rows:
            delta = "" if ref is None or r["knn"] is None or r is rows[0] else \
                f"{r['knn'] - ref:+.3f}"
            lines.append(f"{r['label']:<{width}}  {num(r['knn'])}  {delta:>6}  "
                         f"{r['status']:<9} {r['run_id']}")
        return "\n".join(lines)
    ops = list(dict.fromkeys(r["row"] for r in rows))
    grid = {(r["row"], r["col"]): r["knn"] for r in rows}
    width = max(len(o) for o in ops)
    lines = [" " * width + "  " + "  ".join(f"{o[:12]:>12}" for o in ops)]
    for a in ops:
        cells = [grid.get((a, b), grid.get((b, a))) for b in ops]
        lines.append(f"{a:<{width}}  " + "  ".join(f"{num(v):>12}" for v in cells))
    return "\n".join(lines)


def feed(sweep: Sweep, registry: Any, actor: Any, poll: float = 2.0) -> threading.Thread:
    """Keep submitting the sweep's pending cells as the participant's queue has room, in a
    daemon thread that ends once every cell is submitted (the app's path: the sweep goes on
    when its page is closed)."""

    def loop() -> None:
        while sweep.pending():
            sweep.pump(registry, actor)
            if sweep.pending():
                time.sleep(poll)

    thread = threading.Thread(target=loop, name=f"sweep-{sweep.id}", daemon=True)
    thread.start()
    return thread


def run_sweep(sweep: Sweep, registry: Any, actor: Any, poll: float = 2.0,
              on_update: Any = None) -> list[dict[str, Any]]:
    """Submit every cell of ``sweep`` and wait until all its runs have ended (the command
    line's path); ``on_update(rows)`` is called whenever a cell's status changes. Returns the
    final table."""
    store = registry.store
    last: list[str] = []
    while True:
        sweep.pump(registry, actor)
        rows = sweep.table(store)
        statuses = [r["status"] for r in rows]
        if statuses != last and on_update is not None:
            on_update(rows)
        last = statuses
        if not sweep.pending() and all(s in (*DONE, "deleted", "not run") for s in statuses):
            return rows
        time.sleep(poll)
