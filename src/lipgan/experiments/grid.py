"""A sweep's grid file: a base config, the axes it varies, seeds, the primary metric and the table layout.

The grid is read and checked whole before any training: its own keys and types, every axis and zip group,
and the config of every cell (through the typed config, so an unknown key or a bad value fails here). Each
mistake is one `ConfigError` line. See README, "Reproduce a paper's table", for the file format.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

from lipgan.errors import ConfigError, MissingFileError
from lipgan.training.config import (
    Config,
    config_from_dict,
    config_to_dict,
    find_config,
    parse_overrides,
    read_yaml,
)

GRID_KEYS = ("name", "base", "overrides", "axes", "zip", "seeds", "metric", "diverged", "table")
REQUIRED_KEYS = ("name", "base", "seeds", "metric", "table")
GOALS = ("min", "max")
COMPARISONS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
RULE_PATTERN = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|>|<)\s*(\S+)\s*$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class DivergedRule:
    """`metric op threshold`, e.g. `digits_fid >= 40` (GraN Table 8 counts FID >= 40 as diverged)."""

    metric: str
    op: str
    threshold: float

    def __call__(self, metrics: dict) -> bool:
        value = metrics.get(self.metric)
        if value is None:
            return False
        return not math.isfinite(value) or COMPARISONS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Axis:
    """One varied dimension: a dotted config key with its values, or a zip group of keys with labels."""

    name: str
    labels: tuple  # what the table shows, one per entry
    settings: tuple  # per entry: {dotted key: value}

    def __len__(self) -> int:
        return len(self.labels)


def label_text(value: object) -> str:
    """How a label reads in names and tables: floats in short form (1e-25, 0.25, 1e+11)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its label per axis and the dotted overrides that make it."""

    index: int
    labels: dict
    settings: dict

    @property
    def slug(self) -> str:
        """A run-name-safe join of the labels, e.g. `ns_0.25`, `ns_1e-25`, `ns_1e11` (for 1e+11)."""
        return (
            "_".join(
                re.sub(r"[^A-Za-z0-9.-]+", "-", label_text(v).replace("+", "")) for v in self.labels.values()
            )
            or "base"
        )


@dataclass(frozen=True)
class Run:
    """One cell at one seed: the unit of work, with its own ordinary run directory under `runs/`."""

    index: int
    cell: Cell
    seed: int

    @property
    def dir_name(self) -> str:
        return f"{self.index:05d}-{self.cell.slug}_s{self.seed}"


@dataclass
class Grid:
    name: str
    base: dict  # the resolved base config (file + grid overrides + command-line overrides)
    axes: list[Axis]
    seeds: list[int]
    metric: str
    goal: str
    diverged: DivergedRule | None
    rows: list[str]
    columns: str
    source: dict = field(default_factory=dict)  # the grid file's own mapping, for grid.yaml

    def cells(self) -> list[Cell]:
        """The Cartesian product of the axes, in file order (the last axis varies fastest)."""
        cells = []
        for index, entries in enumerate(itertools.product(*(range(len(a)) for a in self.axes))):
            labels, settings = {}, {}
            for axis, i in zip(self.axes, entries):
                labels[axis.name] = axis.labels[i]
                settings.update(axis.settings[i])
            cells.append(Cell(index, labels, settings))
        return cells

    def runs(self) -> list[Run]:
        """Every cell × seed; seeds vary fastest, so a partial sweep has whole cells first."""
        pairs = itertools.product(self.cells(), self.seeds)
        return [Run(i, cell, seed) for i, (cell, seed) in enumerate(pairs)]

    def run_config(self, run: Run, sweep_dir: Path) -> Config:
        """The fully resolved config of one run."""
        values = merge_dotted(self.base, {**run.cell.settings, "seed": run.seed})
        values["name"] = f"{self.name}-{run.cell.slug}_s{run.seed}"
        values["out_dir"] = str(sweep_dir / "runs")
        return config_from_dict(values)

    def resolved(self) -> dict:
        """What `grid.yaml` holds: the grid with its base config resolved, so that a changed base or
        command-line override is a different grid."""
        return {
            "name": self.name,
            "base": str(self.source.get("base")),
            "base_config": self.base,
            "axes": {a.name: list(a.labels) for a in self.axes},
            "axis_order": [a.name for a in self.axes],  # YAML sorts mappings; the order makes the cells
            "zip": self.source.get("zip") or {},
            "seeds": self.seeds,
            "metric": {"name": self.metric, "goal": self.goal},
            "diverged": str(self.diverged) if self.diverged else None,
            "table": {"rows": self.rows, "columns": self.columns},
            "runs": len(self.cells()) * len(self.seeds),
        }


def merge_dotted(base: dict, dotted: dict) -> dict:
    """`base` (a nested config mapping) with `{"optim.lr_d": 4e-4, ...}` set; a mapping value replaces."""
    merged = {key: dict(value) if isinstance(value, dict) else value for key, value in base.items()}
    for key, value in dotted.items():
        node = merged
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = value
    return merged


def _fail(path: Path, message: str) -> None:
    raise ConfigError(f"{path}: {message}")


def resolve_base(path: Path, base: object) -> Path:
    """The base config: a path relative to the grid file, or a shipped config name (`gran/cifar10_grand`)."""
    if not isinstance(base, str) or not base:
        _fail(path, f"base must name a config file, not {base!r}")
    relative = path.parent / base
    found = relative if relative.is_file() else find_config(base)
    if not found.is_file():
        raise MissingFileError(
            f"{path}: base config {base!r} not found (not beside the grid file, nor a shipped config: "
            "see `lipgan configs`)"
        )
    return found


def _parse_axes(path: Path, raw: object) -> list[Axis]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        _fail(path, f"axes must map dotted config keys to lists of values, not {raw!r}")
    axes = []
    for key, values in raw.items():
        if not isinstance(values, list) or not values:
            _fail(path, f"axis {key} must be a non-empty list of values, not {values!r}")
        axes.append(Axis(str(key), tuple(values), tuple({str(key): v} for v in values)))
    return axes


def _parse_zip(path: Path, raw: object) -> list[Axis]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        _fail(path, f"zip must map group names to {{labels: [...], values: {{key: [...]}}}}, not {raw!r}")
    groups = []
    for name, group in raw.items():
        if not isinstance(group, dict) or set(group) != {"labels", "values"}:
            _fail(path, f"zip group {name} must have exactly the keys labels and values")
        labels, values = group["labels"], group["values"]
        if not isinstance(labels, list) or not labels:
            _fail(path, f"zip group {name}: labels must be a non-empty list")
        if len({str(label) for label in labels}) != len(labels):
            _fail(path, f"zip group {name}: labels must be distinct, got {labels}")
        if not isinstance(values, dict) or not values:
            _fail(path, f"zip group {name}: values must map dotted config keys to lists")
        for key, column in values.items():
            if not isinstance(column, list) or len(column) != len(labels):
                length = len(column) if isinstance(column, list) else "not a list"
                _fail(path, f"zip group {name}: {key} has {length} values for {len(labels)} labels")
        settings = tuple({key: values[key][i] for key in values} for i in range(len(labels)))
        groups.append(Axis(str(name), tuple(labels), settings))
    return groups


def _parse_rule(path: Path, raw: object) -> DivergedRule | None:
    if raw is None:
        return None
    match = RULE_PATTERN.match(str(raw))
    if not match:
        _fail(path, f"diverged must read '<metric> <op> <number>' with op one of >= > <= <, not {raw!r}")
    try:
        threshold = float(match.group(3))
    except ValueError:
        _fail(path, f"diverged: {match.group(3)!r} is not a number")
    return DivergedRule(match.group(1), match.group(2), threshold)


def _parse_seeds(path: Path, raw: object) -> list[int]:
    ok = isinstance(raw, list) and raw and all(isinstance(s, int) and not isinstance(s, bool) for s in raw)
    if not ok or any(s < 0 for s in raw):
        _fail(path, f"seeds must be a non-empty list of integers >= 0, not {raw!r}")
    if len(set(raw)) != len(raw):
        _fail(path, f"seeds must be distinct, got {raw}")
    return list(raw)


def _parse_metric(path: Path, raw: object) -> tuple[str, str]:
    if not isinstance(raw, dict) or set(raw) != {"name", "goal"} or raw["goal"] not in GOALS:
        _fail(path, f"metric must be {{name: <metric>, goal: min|max}}, not {raw!r}")
    return str(raw["name"]), raw["goal"]


def _parse_table(path: Path, raw: object, axes: list[Axis]) -> tuple[list[str], str]:
    if not isinstance(raw, dict) or set(raw) != {"rows", "columns"}:
        _fail(path, f"table must be {{rows: [axis, ...], columns: axis}}, not {raw!r}")
    rows = raw["rows"] if isinstance(raw["rows"], list) else [raw["rows"]]
    columns = raw["columns"]
    names = [a.name for a in axes]
    for name in [*rows, columns]:
        if name not in names:
            _fail(path, f"table names {name!r}, which is not an axis or zip group; they are {names}")
    used = [*rows, columns]
    if len(set(used)) != len(used) or set(used) != set(names):
        _fail(path, f"table must use every axis and zip group exactly once ({names}), got {used}")
    return [str(r) for r in rows], str(columns)


def load_grid(path: str | Path, overrides: list[str] | None = None) -> Grid:
    """Read and check a grid file; `overrides` (`key=value`) apply to every run's config."""
    path = Path(path)
    raw = read_yaml(path)
    _check_keys(path, raw)
    grid_overrides = raw.get("overrides") or {}
    if not isinstance(grid_overrides, dict):
        _fail(path, f"overrides must map dotted config keys to values, not {grid_overrides!r}")
    base_path = resolve_base(path, raw["base"])
    dotted = {**grid_overrides, **_flatten(parse_overrides(overrides or []))}
    try:
        base = config_to_dict(config_from_dict(merge_dotted(read_yaml(base_path), dotted)))
    except ConfigError as err:
        raise ConfigError(f"{path}: base config {base_path}: {err}") from None
    return parse_grid(raw, path, base)


def _check_keys(path: Path, raw: dict) -> None:
    unknown = sorted(set(raw) - set(GRID_KEYS))
    if unknown:
        _fail(path, f"unknown grid key {unknown[0]!r}; valid keys: {', '.join(GRID_KEYS)}")
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        _fail(path, f"missing grid key {missing[0]!r}")


def parse_grid(raw: dict, path: Path, base: dict) -> Grid:
    """The grid of the mapping `raw` (read from `path`) over the resolved base config `base`."""
    _check_keys(path, raw)
    name = raw["name"]
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        _fail(path, f"name may hold letters, digits, - _ . only, not {name!r}")
    axes = _parse_axes(path, raw.get("axes")) + _parse_zip(path, raw.get("zip"))
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        _fail(path, f"an axis and a zip group share a name: {names}")
    keys = [key for a in axes for key in a.settings[0]]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        _fail(path, f"{twice[0]} is varied by more than one axis or zip group")
    metric, goal = _parse_metric(path, raw["metric"])
    rows, columns = _parse_table(path, raw["table"], axes)
    grid = Grid(
        name=name,
        base=base,
        axes=axes,
        seeds=_parse_seeds(path, raw["seeds"]),
        metric=metric,
        goal=goal,
        diverged=_parse_rule(path, raw.get("diverged")),
        rows=rows,
        columns=columns,
        source=raw,
    )
    check_cells(grid, path)
    return grid


def check_cells(grid: Grid, path: Path) -> None:
    """Resolve every cell's config now, so that a bad value fails before the first run starts."""
    for cell in grid.cells():
        try:
            config_from_dict(merge_dotted(grid.base, cell.settings))
        except ConfigError as err:
            where = ", ".join(f"{k}={v}" for k, v in cell.labels.items())
            raise ConfigError(f"{path}: cell {where}: {err}") from None


def _flatten(nested: dict, prefix: str = "") -> dict:
    """`{"optim": {"lr_d": 1}}` -> `{"optim.lr_d": 1}`; `options` mappings stay whole."""
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict) and key != "options":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
