"""Discriminator value surfaces on 2-D data (GN Fig. 3): the constrained output D̂ and the network output f
over a grid covering the reals and the fakes, with both sample sets drawn on top."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lipgan.analysis.base import plot_path, register_probe
from lipgan.analysis.context import ProbeContext, batched, constrained_output, raw_output
from lipgan.analysis.plotting import SET_COLORS, new_figure, save_figure

GRID_SIDE = 101  # grid points per axis
MARGIN = 0.1  # fraction of the data extent added on every side


def is_points_run(ctx: ProbeContext) -> bool:
    return ctx.is_points


def grid_extent(points: Tensor, margin: float = MARGIN) -> tuple[float, float, float, float]:
    """``(x_min, x_max, y_min, y_max)`` of the points ``[N, 2]``, widened by ``margin`` of the extent."""
    low, high = points.min(dim=0).values, points.max(dim=0).values  # [2]
    pad = (high - low).clamp_min(1e-6) * margin
    low, high = low - pad, high + pad
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])


def grid_points(extent: tuple[float, float, float, float], side: int, dtype: torch.dtype) -> Tensor:
    """A ``side × side`` grid over ``extent`` as points ``[side², 2]``, rows varying in y."""
    xs = torch.linspace(extent[0], extent[1], side, dtype=dtype)
    ys = torch.linspace(extent[2], extent[3], side, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # [side, side]
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


def surface_headline(record: dict) -> dict:
    return {"normalized": record["normalized"], "raw": record["raw"]}


@register_probe("value-surface", figure="GN Fig. 3", applies=is_points_run, headline=surface_headline)
def value_surface_probe(ctx: ProbeContext) -> dict:
    """Heat maps of D̂ and f over a grid covering reals and fakes (2-D runs only)."""
    extent = grid_extent(torch.cat([ctx.real, ctx.fake]).detach())
    grid = grid_points(extent, GRID_SIDE, ctx.real.dtype).to(ctx.real.device)
    with torch.no_grad():
        surfaces = {
            "normalized": batched(lambda x: constrained_output(ctx)(x).detach(), grid, 2048),
            "raw": batched(lambda x: raw_output(ctx)(x).detach(), grid, 2048),
        }
    record: dict = {
        "extent": list(extent),
        "grid_side": GRID_SIDE,
        "method": ctx.gradnorm_method,
        "step": ctx.step,
    }
    for name, values in surfaces.items():
        record[name] = {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean())}
    plot_surfaces(ctx, extent, {k: v.view(GRID_SIDE, GRID_SIDE).cpu().numpy() for k, v in surfaces.items()})
    return record


def plot_surfaces(ctx: ProbeContext, extent: tuple[float, float, float, float], surfaces: dict) -> None:
    fig, axes = new_figure(2, panel_size=(5.5, 4.5))
    titles = {"normalized": "constrained output D̂(x)", "raw": "network output f(x)"}
    for ax, (name, values) in zip(axes, surfaces.items()):
        image = ax.imshow(values, origin="lower", extent=extent, aspect="auto", cmap="viridis")
        ax.contour(
            values, levels=12, origin="lower", extent=extent, colors="white", linewidths=0.5, alpha=0.6
        )
        fig.colorbar(image, ax=ax, label=titles[name])
        for set_name, points in (("real", ctx.real), ("fake", ctx.fake)):
            xy = np.asarray(points.detach().cpu(), dtype=float)
            ax.scatter(xy[:, 0], xy[:, 1], s=8, c=SET_COLORS[set_name], edgecolors="none", label=set_name)
        ax.set_title(titles[name])
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
        ax.legend(fontsize="small", loc="upper right")
    save_figure(
        fig,
        plot_path(ctx, "value-surface"),
        title=f"Discriminator value surface ({ctx.gradnorm_method or 'raw'})",
    )
