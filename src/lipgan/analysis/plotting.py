"""Plot helpers for the probes: Agg-rendered figures built without pyplot (so no global figure state is
left behind), 120 dpi PNG files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 120
GRAD_NORM_LABEL = "‖∇ₓD(x)‖₂"
RAW_GRAD_NORM_LABEL = "‖∇ₓf(x)‖₂"
NORMALIZED_GRAD_NORM_LABEL = "‖∇ₓD̂(x)‖₂"
SET_COLORS = {"real": "tab:blue", "fake": "tab:orange", "random": "tab:gray"}


def new_figure(n_panels: int = 1, panel_size: tuple[float, float] = (5.0, 4.0)) -> tuple[Figure, list[Axes]]:
    """A figure with ``n_panels`` side by side, rendered by Agg."""
    fig = Figure(figsize=(panel_size[0] * n_panels, panel_size[1]), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, list(axes)


def save_figure(fig: Figure, path: Path, title: str | None = None) -> Path:
    """Write ``fig`` as a PNG at 120 dpi and release its canvas; returns ``path``."""
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    fig.clear()
    return path


def box_panel(ax: Axes, groups: dict[str, np.ndarray], ylabel: str, title: str, log: bool = False) -> None:
    """One box plot per named group of per-sample numbers (GraN Fig. 3 style)."""
    names = list(groups)
    ax.boxplot([np.asarray(groups[n], dtype=float) for n in names], tick_labels=names, showfliers=True)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.grid(True, axis="y", alpha=0.3)


def band_panel(
    ax: Axes,
    x: Sequence[float],
    center: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    label: str,
    color: str | None = None,
) -> None:
    """A line with a shaded band between ``low`` and ``high``."""
    (line,) = ax.plot(x, center, label=label, color=color, marker=".")
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.25, linewidth=0)


def bar_pairs(ax: Axes, labels: Sequence[str], series: dict[str, Sequence[float]], ylabel: str) -> None:
    """Grouped bars, one group per label and one bar per series (log y axis)."""
    positions = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(positions + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(positions, labels, rotation=45, ha="right", fontsize="small")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.legend(fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
