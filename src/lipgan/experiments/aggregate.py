"""From `cells.jsonl` to the paper-style table: mean ± sample std over seeds per cell, and `k/n` diverged.

Pure functions over rows; `table.md` (rows × columns, as the papers print them) and `table.csv` (one line per
cell, full precision) hold the same numbers: the Markdown shows each CSV value through `fmt`.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass

from lipgan.experiments.grid import Grid, label_text
from lipgan.experiments.runner import DIVERGED, FAILED, FINISHED


@dataclass(frozen=True)
class CellSummary:
    labels: dict  # axis name -> label
    values: tuple  # the finite primary-metric values of the finished runs, in seed order
    finished: int  # runs that ended ok or diverged
    diverged: int
    failed: int
    pending: int  # runs with no row yet

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """The sample standard deviation (n − 1), defined from two values on."""
        return statistics.stdev(self.values) if len(self.values) >= 2 else None


def summarize(grid: Grid, rows: list[dict]) -> list[CellSummary]:
    """One summary per cell of `grid`, in cell order, from the rows of `cells.jsonl`."""
    by_cell: dict[int, list[dict]] = {}
    for row in rows:
        by_cell.setdefault(row["cell_index"], []).append(row)
    summaries = []
    for cell in grid.cells():
        cell_rows = sorted(by_cell.get(cell.index, []), key=lambda r: r["seed"])
        finished = [r for r in cell_rows if r["status"] in FINISHED]
        values = tuple(
            float(r["metrics"][grid.metric])
            for r in finished
            if isinstance(r.get("metrics", {}).get(grid.metric), int | float)
            and math.isfinite(r["metrics"][grid.metric])
        )
        summaries.append(
            CellSummary(
                labels=dict(cell.labels),
                values=values,
                finished=len(finished),
                diverged=sum(r["status"] == DIVERGED for r in cell_rows),
                failed=sum(r["status"] == FAILED for r in cell_rows),
                pending=len(grid.seeds) - len(cell_rows),
            )
        )
    return summaries


def fmt(value: float | None) -> str:
    """Four significant digits (FID 309.4, 3.58; IS 8.451), or – where there is no number."""
    return "–" if value is None else f"{value:.4g}"


def cell_text(s: CellSummary) -> str:
    """`mean ± std (k/n)` as GraN Table 8 counts divergence; failed and pending runs are named."""
    if s.mean is None:
        text = "–"
    elif s.std is None:
        text = fmt(s.mean)
    else:
        text = f"{fmt(s.mean)} ± {fmt(s.std)}"
    text += f" ({s.diverged}/{s.finished})" if s.finished else ""
    extra = [f"{n} {what}" for n, what in ((s.failed, "failed"), (s.pending, "pending")) if n]
    return text + (f" [{', '.join(extra)}]" if extra else "")


CSV_FIELDS = ("mean", "std", "n", "diverged", "finished", "failed", "pending", "values")


def table_csv(grid: Grid, summaries: list[CellSummary]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [a.name for a in grid.axes]
    writer.writerow([*names, *CSV_FIELDS])
    for s in summaries:
        writer.writerow(
            [
                *(s.labels[n] for n in names),
                "" if s.mean is None else repr(s.mean),
                "" if s.std is None else repr(s.std),
                len(s.values),
                s.diverged,
                s.finished,
                s.failed,
                s.pending,
                " ".join(repr(v) for v in s.values),
            ]
        )
    return out.getvalue()


def table_markdown(grid: Grid, summaries: list[CellSummary]) -> str:
    """Rows are the combinations of `table.rows`, columns the values of `table.columns`."""
    columns_axis = next(a for a in grid.axes if a.name == grid.columns)
    index = {row_key(grid, s.labels) + (s.labels[grid.columns],): s for s in summaries}
    row_keys = list(dict.fromkeys(row_key(grid, s.labels) for s in summaries))
    header = [*grid.rows, *(f"{grid.columns}={label_text(label)}" for label in columns_axis.labels)]
    lines = [
        f"# {grid.name}",
        "",
        f"{grid.metric} ({'lower' if grid.goal == 'min' else 'higher'} is better): mean ± sample std over "
        f"seeds {grid.seeds}; (k/n): k of the n finished runs diverged"
        + (f" ({grid.diverged} or stopped by the NaN guard)." if grid.diverged else " (NaN guard)."),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for key in row_keys:
        texts = [cell_text(index[key + (label,)]) for label in columns_axis.labels]
        lines.append("| " + " | ".join([*(label_text(k) for k in key), *texts]) + " |")
    totals = [sum(getattr(s, f) for s in summaries) for f in ("finished", "diverged", "failed", "pending")]
    lines += ["", "Runs: {} finished ({} diverged), {} failed, {} pending.".format(*totals), ""]
    return "\n".join(lines)


def row_key(grid: Grid, labels: dict) -> tuple:
    """The labels of a cell's table row."""
    return tuple(labels[name] for name in grid.rows)
