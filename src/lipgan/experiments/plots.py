"""A sweep's plots, as the papers draw them: for each table row, the metric against the column axis with
error bars (LipReg Tables 2 and 5: FID against k_SN or α on a log axis), and the divergence counts as a
heat map (GraN Table 8)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lipgan.analysis.plotting import new_figure, save_figure
from lipgan.experiments.aggregate import CellSummary, fmt, row_key
from lipgan.experiments.grid import Grid, label_text

LOG_SPAN = 20.0  # positive values whose max/min reaches this are drawn on a log axis (x and y alike)


def numeric_positions(labels: tuple) -> tuple[list[float] | None, bool]:
    """x positions of the column labels when they are all numbers, and whether they are log-spaced."""
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels):
        return None, False
    values = [float(v) for v in labels]
    positive = all(v > 0 for v in values)
    return values, positive and max(values) / min(values) >= LOG_SPAN


def plot_metric(grid: Grid, summaries: list[CellSummary], path: Path) -> Path:
    columns_axis = next(a for a in grid.axes if a.name == grid.columns)
    xs, log_x = numeric_positions(columns_axis.labels)
    positions = xs if xs is not None else list(range(len(columns_axis)))
    fig, (ax,) = new_figure(1, (7.0, 4.5))
    means = []
    for key in dict.fromkeys(tuple(s.labels[n] for n in grid.rows) for s in summaries):
        by_label = {
            s.labels[grid.columns]: s for s in summaries if tuple(s.labels[n] for n in grid.rows) == key
        }
        cells = [by_label[label] for label in columns_axis.labels]
        mean = np.array([math.nan if s.mean is None else s.mean for s in cells])
        std = np.array([0.0 if s.std is None else s.std for s in cells])
        means += [m for m in mean if math.isfinite(m)]
        name = ", ".join(label_text(k) for k in key) or grid.metric
        ax.errorbar(positions, mean, yerr=std, marker="o", capsize=3, label=name)
        for x, s in zip(positions, cells):
            if s.diverged and s.mean is not None:
                ax.annotate(f"{s.diverged}/{s.finished}", (x, s.mean), fontsize=7, color="tab:red")
            elif s.diverged:  # every run stopped by the NaN guard: no value, so say so at the top
                where = {"xycoords": ("data", "axes fraction"), "ha": "center", "va": "top"}
                ax.annotate(f"{name}: NaN", (x, 0.98), fontsize=7, color="tab:red", **where)
    if grid.diverged is not None and grid.diverged.metric == grid.metric:
        ax.axhline(grid.diverged.threshold, ls="--", color="gray", lw=1, label=f"diverged: {grid.diverged}")
    if log_x:
        ax.set_xscale("log")
    if xs is None:
        ax.set_xticks(positions, [label_text(v) for v in columns_axis.labels])
    positive = [m for m in means if m > 0]
    if positive and len(positive) == len(means) and max(positive) / min(positive) >= LOG_SPAN:
        ax.set_yscale("log")
    ax.set_xlabel(grid.columns)
    ax.set_ylabel(f"{grid.metric} ({'lower' if grid.goal == 'min' else 'higher'} is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, title=", ".join(grid.rows) or None)
    return save_figure(fig, path, f"{grid.name}: mean ± std over {len(grid.seeds)} seeds")


def plot_divergence(grid: Grid, summaries: list[CellSummary], path: Path) -> Path:
    columns_axis = next(a for a in grid.axes if a.name == grid.columns)
    row_keys = list(dict.fromkeys(row_key(grid, s.labels) for s in summaries))
    share = np.full((len(row_keys), len(columns_axis)), math.nan)
    fig, (ax,) = new_figure(1, (1.2 * len(columns_axis) + 3, 0.5 * len(row_keys) + 2))
    for s in summaries:
        i = row_keys.index(row_key(grid, s.labels))
        j = list(columns_axis.labels).index(s.labels[grid.columns])
        if s.finished:
            share[i, j] = s.diverged / s.finished
            color = "white" if share[i, j] > 0.5 else "black"  # legible on the dark cells
            text = f"{s.diverged}/{s.finished}\n{fmt(s.mean)}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    image = ax.imshow(share, vmin=0, vmax=1, cmap="Reds", aspect="auto")
    ax.set_xticks(range(len(columns_axis)), [label_text(v) for v in columns_axis.labels])
    ax.set_yticks(range(len(row_keys)), [", ".join(label_text(k) for k in key) for key in row_keys])
    ax.set_xlabel(grid.columns)
    fig.colorbar(image, ax=ax, label="share of runs diverged")
    return save_figure(fig, path, f"{grid.name}: diverged runs (k/n) and mean {grid.metric}")


def plot_sweep(grid: Grid, summaries: list[CellSummary], plots_dir: Path) -> list[Path]:
    return [
        plot_metric(grid, summaries, plots_dir / f"{grid.metric}_vs_{grid.columns}.png"),
        plot_divergence(grid, summaries, plots_dir / "diverged.png"),
    ]
