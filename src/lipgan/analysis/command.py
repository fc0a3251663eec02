"""``lipgan probe RUN --kind KIND``: load a run, run the probes, write their files, return summaries."""

from __future__ import annotations

from pathlib import Path

from lipgan.analysis.base import PROBES
from lipgan.analysis.runner import ALL_KINDS, context_from_run, run_probe_kinds


def selected_kinds(kind: str | list[str]) -> list[str] | str:
    """``"all"``, or the list of kinds (comma-separated in a string), each checked against ``PROBES``."""
    if kind == ALL_KINDS:
        return ALL_KINDS
    kinds = [k.strip() for k in kind.split(",")] if isinstance(kind, str) else list(kind)
    for name in kinds:
        PROBES.get(name)
    return kinds


def run_probes(
    run_dir: str | Path,
    kind: str | list[str] = ALL_KINDS,
    n_samples: int = 256,
    which: str = "last",
    device: str = "cpu",
    out_dir: str | Path | None = None,
    seed: int = 0,
) -> dict[str, dict]:
    """Run the probes ``kind`` (a kind, a comma-separated list, or ``"all"`` that apply) on the run's
    ``which`` checkpoint with ``n_samples`` reals and fakes drawn with ``seed``.

    Writes ``<out_dir>/<kind>.json`` and ``<out_dir>/plots/<kind>.png`` (``out_dir`` defaults to
    ``RUN/probes``) and returns ``{kind: headline}``: the few numbers of each probe worth one printed line,
    plus the paths of its files. Unknown or inapplicable kinds raise ConfigError before any work is done.
    """
    from lipgan.training import load_run

    kinds = selected_kinds(kind)
    run = load_run(run_dir, which=which, device=device)
    target = Path(out_dir) if out_dir is not None else Path(run.run_dir) / "probes"
    ctx = context_from_run(run, target, n_samples, seed)
    records = run_probe_kinds(kinds, ctx)
    return {
        name: {
            **PROBES.get(name).headline(record),
            "json": str(target / f"{name}.json"),
            "plot": str(target / "plots" / f"{name}.png"),
        }
        for name, record in records.items()
    }
