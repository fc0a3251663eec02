"""`lipgan sweep`: a grid of configs × seeds as ordinary runs, resumable, aggregated into the paper's table.

The sweep directory `sweeps/<00000>-<name>/` holds `grid.yaml` (the resolved grid), `cells.jsonl` (one row
per finished or failed run), `table.md`, `table.csv`, `plots/` and `runs/`. Running the same grid again
continues its newest directory: finished runs are skipped, interrupted ones resume from their checkpoint
(as `lipgan train --resume`), failed ones run again only with `retry_failed`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from lipgan.errors import ConfigError, MissingFileError
from lipgan.experiments.aggregate import summarize, table_csv, table_markdown
from lipgan.experiments.backends import BACKENDS, threads_per_worker
from lipgan.experiments.grid import Grid, Run, load_grid, parse_grid
from lipgan.experiments.plots import plot_sweep
from lipgan.experiments.runner import DIVERGED, FAILED, FINISHED, INTERRUPTED, OK, SKIPPED, RunJob
from lipgan.training.config import config_to_dict
from lipgan.training.run_dir import RUN_PATTERN, next_index, read_jsonl


def _canonical(value: dict) -> dict:
    """The grid as YAML reads it back, so that a fresh grid compares equal to its `grid.yaml`."""
    return yaml.safe_load(yaml.safe_dump(value, sort_keys=True))


def _first_difference(a: object, b: object, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
    return path or "the grid"


def read_grid_record(sweep_dir: Path) -> dict | None:
    """The resolved grid a sweep directory was written by, or None where there is no `grid.yaml`."""
    path = sweep_dir / "grid.yaml"
    if not path.is_file():
        return None
    try:
        record = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        record = None
    if not isinstance(record, dict) or "base_config" not in record:
        raise ConfigError(
            f"{sweep_dir} is not a sweep directory: its grid.yaml was not written by lipgan sweep"
        )
    return record


def open_sweep_dir(grid: Grid, sweeps_root: Path, explicit: Path | None, create: bool) -> Path:
    """`explicit` when given (it must be new, empty or written by this grid), else the newest
    `sweeps_root/<index>-<name>` written by this grid, else the next free index."""
    wanted = _canonical(grid.resolved())
    if explicit is not None:
        record = read_grid_record(explicit)
        if record is not None and record != wanted:
            raise ConfigError(
                f"{explicit} was written by another grid (it differs at "
                f"{_first_difference(record, wanted)}); give another --dir, or leave it out for a new one"
            )
        if record is None and explicit.is_dir() and any(explicit.iterdir()):
            raise ConfigError(f"{explicit} is not empty and holds no grid.yaml: not a sweep directory")
        chosen = explicit
    else:
        chosen = _matching_dir(sweeps_root, grid.name, wanted) or _next_dir(sweeps_root, grid.name)
    if create:
        write_sweep_dir(grid, chosen)
    return chosen


def write_sweep_dir(grid: Grid, sweep_dir: Path) -> None:
    """Create `sweep_dir` with `runs/`, `plots/` and the resolved `grid.yaml`."""
    (sweep_dir / "runs").mkdir(parents=True, exist_ok=True)
    (sweep_dir / "plots").mkdir(exist_ok=True)
    (sweep_dir / "grid.yaml").write_text(yaml.safe_dump(_canonical(grid.resolved()), sort_keys=True))


def _matching_dir(root: Path, name: str, wanted: dict) -> Path | None:
    if not root.is_dir():
        return None
    same_name = [p for p in root.iterdir() if RUN_PATTERN.match(p.name) and p.name[6:] == name]
    return next((p for p in sorted(same_name, reverse=True) if _record_or_none(p) == wanted), None)


def _record_or_none(sweep_dir: Path) -> dict | None:
    try:
        return read_grid_record(sweep_dir)
    except ConfigError:  # a foreign folder that happens to carry the name is not ours to continue
        return None


def _next_dir(root: Path, name: str) -> Path:
    return root / f"{next_index(root):05d}-{name}"


@dataclass
class SweepState:
    """The rows of `cells.jsonl`, keyed by run index, rewritten whole (atomically) after each run."""

    path: Path
    rows: dict[int, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, sweep_dir: Path) -> SweepState:
        path = sweep_dir / "cells.jsonl"
        return cls(path, {row["run_index"]: row for row in read_jsonl(path)})

    def record(self, row: dict) -> None:
        self.rows[row["run_index"]] = row
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(self.rows[i]) + "\n" for i in sorted(self.rows)))
        os.replace(tmp, self.path)


def plan(grid: Grid, sweep_dir: Path, state: SweepState, retry_failed: bool) -> dict[str, list[Run]]:
    """Each run's fate in this invocation: done (skipped), kept failed, resume or start."""
    fate: dict[str, list[Run]] = {"done": [], "failed": [], "resume": [], "start": []}
    for run in grid.runs():
        row = state.rows.get(run.index)
        if row is not None and row["status"] in FINISHED:
            fate["done"].append(run)
        elif row is not None and row["status"] == FAILED and not retry_failed:
            fate["failed"].append(run)
        elif (sweep_dir / "runs" / run.dir_name / "checkpoints" / "last.pt").is_file():
            fate["resume"].append(run)
        else:
            fate["start"].append(run)
    return fate


def row_for(grid: Grid, run: Run, result: dict) -> dict:
    """The `cells.jsonl` row of a run that ended: the grid's divergence rule turns `ok` into `diverged`."""
    metrics = result.get("metrics", {})
    status = result["status"]
    if status == OK and grid.diverged is not None and grid.diverged(metrics):
        status = DIVERGED
    row = {
        "run_index": run.index,
        "cell_index": run.cell.index,
        "axes": run.cell.labels,
        "seed": run.seed,
        "status": status,
        "metrics": metrics,
        "wall_s": result.get("wall_s"),
        "run_dir": f"runs/{run.dir_name}",
    }
    if result.get("error"):
        row["error"] = result["error"]
    return row


def write_outputs(grid: Grid, sweep_dir: Path, rows: list[dict]) -> list[Path]:
    """`table.md`, `table.csv` and `plots/` from the rows."""
    summaries = summarize(grid, rows)
    (sweep_dir / "table.md").write_text(table_markdown(grid, summaries))
    (sweep_dir / "table.csv").write_text(table_csv(grid, summaries))
    return [
        sweep_dir / "table.md",
        sweep_dir / "table.csv",
        *plot_sweep(grid, summaries, sweep_dir / "plots"),
    ]


def retable(sweep_dir: str | Path) -> list[Path]:
    """`lipgan sweep --table DIR`: aggregate again from `grid.yaml` and `cells.jsonl`, without training."""
    sweep_dir = Path(sweep_dir)
    record = read_grid_record(sweep_dir)
    if record is None:
        raise MissingFileError(f"{sweep_dir} is not a sweep directory (no grid.yaml)")
    grid = grid_from_record(record, sweep_dir)
    return write_outputs(grid, sweep_dir, list(SweepState.load(sweep_dir).rows.values()))


def grid_from_record(record: dict, sweep_dir: Path) -> Grid:
    """The grid a `grid.yaml` describes; its base config is stored resolved, so no other file is read."""
    path = sweep_dir / "grid.yaml"
    zipped, order = record.get("zip") or {}, record["axis_order"]
    raw = {
        "name": record["name"],
        "base": record["base"],
        "axes": {k: record["axes"][k] for k in order if k not in zipped} or None,
        "zip": {k: zipped[k] for k in order if k in zipped} or None,
        "seeds": record["seeds"],
        "metric": record["metric"],
        "diverged": record["diverged"],
        "table": record["table"],
    }
    grid = parse_grid(raw, path, record["base_config"])
    if _canonical(grid.resolved()) != record:
        raise ConfigError(f"{path} does not describe a grid this lipgan can read back")
    return grid


@dataclass
class SweepOptions:
    workers: int = 1
    backend: str = "local"
    address: str | None = None
    threads: int | None = None  # torch threads per run; default cores / workers (local) or 1 (Ray)
    gpus_per_run: float = 0.0
    retry_failed: bool = False
    dry_run: bool = False
    sweeps_dir: str = "sweeps"
    sweep_dir: str | None = None  # an explicit sweep directory


def run_sweep(grid_path: str | Path, overrides: list[str], options: SweepOptions) -> tuple[Path, dict]:
    """The whole of `lipgan sweep`: returns the sweep directory and counts of what happened."""
    if options.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {options.workers}")
    if options.threads is not None and options.threads < 1:
        raise ConfigError(f"--threads must be at least 1, not {options.threads}")
    make_backend = BACKENDS.get(options.backend)
    grid = load_grid(grid_path, overrides)
    explicit = Path(options.sweep_dir) if options.sweep_dir else None
    sweep_dir = open_sweep_dir(grid, Path(options.sweeps_dir), explicit, create=False)
    if options.dry_run:
        fate = plan(grid, sweep_dir, SweepState.load(sweep_dir), options.retry_failed)
        print_plan(grid, sweep_dir, fate)
        return sweep_dir, {"done": len(fate["done"]), "failed_kept": len(fate["failed"])}
    threads = options.threads or (threads_per_worker(options.workers) if options.backend == "local" else 1)
    # the backend first: a missing Ray or an unreachable cluster leaves no sweep directory behind
    execute = make_backend(
        workers=options.workers,
        address=options.address,
        cpus_per_run=threads,
        gpus_per_run=options.gpus_per_run,
    )
    write_sweep_dir(grid, sweep_dir)
    state = SweepState.load(sweep_dir)
    fate = plan(grid, sweep_dir, state, options.retry_failed)
    counts = {"done": len(fate["done"]), "failed_kept": len(fate["failed"])}
    todo = sorted(fate["resume"] + fate["start"], key=lambda r: r.index)
    jobs = [make_job(grid, sweep_dir, run, threads, run in fate["resume"]) for run in todo]
    runs = {run.index: run for run in todo}
    bar = tqdm(total=len(jobs), desc=f"sweep {grid.name}", unit="run", file=sys.stderr)
    tally = {OK: 0, DIVERGED: 0, FAILED: 0}

    def on_result(job: RunJob, result: dict) -> None:
        if result["status"] in (INTERRUPTED, SKIPPED):
            return
        row = row_for(grid, runs[job.index], result)
        state.record(row)
        tally[row["status"]] += 1
        bar.update(1)
        bar.set_postfix(tally)
        if row["status"] == FAILED:
            bar.write(f"run {row['run_dir']} failed: {row.get('error', '')}", file=sys.stderr)

    try:
        interrupted = execute(jobs, on_result)
    finally:
        bar.close()
    write_outputs(grid, sweep_dir, list(state.rows.values()))
    counts.update(tally, interrupted=interrupted, threads=threads)
    return sweep_dir, counts


def make_job(grid: Grid, sweep_dir: Path, run: Run, threads: int, resume: bool) -> RunJob:
    run_dir = sweep_dir / "runs" / run.dir_name
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)  # a run that stopped before its first checkpoint starts over
    config = config_to_dict(grid.run_config(run, sweep_dir))
    return RunJob(run.index, str(run_dir.resolve()), config, threads, resume)


def print_plan(grid: Grid, sweep_dir: Path, fate: dict[str, list[Run]]) -> None:
    state_of = {run.index: name for name, runs in fate.items() for run in runs}
    cells = grid.cells()
    print(f"sweep directory: {sweep_dir}")
    print(f"{len(cells)} cells × {len(grid.seeds)} seeds {grid.seeds} = {len(cells) * len(grid.seeds)} runs")
    for cell in cells:
        where = ", ".join(f"{k}={v}" for k, v in cell.labels.items()) or "(base config)"
        fates = [state_of[r.index] for r in grid.runs() if r.cell.index == cell.index]
        print(f"  cell {cell.index:3d}: {where}  [{' '.join(fates)}]")
    print(", ".join(f"{len(runs)} {name}" for name, runs in fate.items()) + "; nothing trained (--dry-run)")
