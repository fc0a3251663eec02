"""The probe registry and the small pieces every probe shares: summaries of per-sample numbers, JSON
conversion and where a probe writes its files (docs/methods.md §10).

A probe is a function ``probe(ctx) -> dict`` of a :class:`~lipgan.analysis.context.ProbeContext`; it writes
``ctx.out_dir/plots/<kind>.png`` and returns JSON-serializable numbers, which :func:`run_probe` stores as
``ctx.out_dir/<kind>.json``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipgan.analysis.context import eval_mode
from lipgan.registry import Registry
from lipgan.training import run_dir

ProbeFn = Callable[[Any], dict]  # (ProbeContext) -> JSON-serializable dict


def always(ctx: Any) -> bool:
    """Applicability predicate of probes that work on every run."""
    return True


def top_level_scalars(record: dict) -> dict:
    """The entries of a probe record that are single numbers, strings, booleans or None."""
    return {k: v for k, v in record.items() if v is None or isinstance(v, int | float | str | bool)}


@dataclass(frozen=True)
class Probe:
    """One registered analysis: ``fn(ctx) -> dict``; ``applies(ctx)`` says whether it makes sense for the
    run (``--kind all`` runs those that do); ``figure`` names the paper figure it reproduces;
    ``headline(record)`` picks the few numbers worth printing on one line."""

    kind: str
    fn: ProbeFn
    applies: Callable[[Any], bool]
    figure: str
    headline: Callable[[dict], dict] = top_level_scalars

    def __call__(self, ctx: Any) -> dict:
        """Run the probe with D and G in eval mode (power iterations frozen), restoring their modes."""
        with eval_mode(ctx.D, ctx.G):
            return self.fn(ctx)


PROBES: Registry[Probe] = Registry("probe")


def register_probe(
    kind: str,
    figure: str,
    applies: Callable[[Any], bool] = always,
    headline: Callable[[dict], dict] = top_level_scalars,
) -> Callable[[ProbeFn], ProbeFn]:
    """Decorator: register ``fn`` as the probe ``kind`` (reproducing ``figure``)."""

    def add(fn: ProbeFn) -> ProbeFn:
        PROBES.register(kind)(Probe(kind, fn, applies, figure, headline))
        return fn

    return add


def plot_path(ctx: Any, kind: str) -> Path:
    """``<out_dir>/plots/<kind>.png``, creating the folder."""
    folder = Path(ctx.out_dir) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}.png"


def summarize(values: torch.Tensor | Sequence[float]) -> dict[str, float]:
    """Mean, standard deviation, min, quartiles and max of a set of numbers (the box-plot statistics)."""
    v = torch.as_tensor(values, dtype=torch.float64).detach().flatten().cpu()
    q = torch.quantile(v, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return {
        "n": int(v.numel()),
        "mean": float(v.mean()),
        "std": float(v.std(unbiased=False)),
        "min": float(v.min()),
        "q25": float(q[0]),
        "median": float(q[1]),
        "q75": float(q[2]),
        "max": float(v.max()),
    }


def to_list(values: torch.Tensor) -> list[float]:
    """A detached 1-D tensor as a list of Python floats."""
    return [float(v) for v in values.detach().flatten().cpu().tolist()]


def jsonable(obj: Any) -> Any:
    """``obj`` with tensors, numpy values, tuples and paths turned into JSON types; non-finite floats become
    ``None`` (strict JSON has no NaN or Infinity)."""
    if isinstance(obj, torch.Tensor):
        return jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray | np.generic):
        return jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def write_json(path: Path, record: dict) -> None:
    """Write ``record`` as strict, indented JSON (non-finite numbers as null), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run_dir.write_json(path, jsonable(record))
