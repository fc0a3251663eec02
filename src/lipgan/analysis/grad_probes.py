"""Input-gradient probes of GraN: gradient-norm box plots (GraN Fig. 3, Fig. 8a/c) and the finite-difference
Lipschitz probe along the gradient (GraN Fig. 4, Fig. 8b/d)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lipgan.analysis.base import plot_path, register_probe, summarize, to_list
from lipgan.analysis.context import (
    ProbeContext,
    batched,
    constrained_output,
    per_sample_norm,
    raw_output,
    value_and_input_grad,
)
from lipgan.analysis.plotting import (
    NORMALIZED_GRAD_NORM_LABEL,
    RAW_GRAD_NORM_LABEL,
    SET_COLORS,
    band_panel,
    box_panel,
    new_figure,
    save_figure,
)
from lipgan.constraints.gradnorm import GRADNORM_METHODS

FD_DELTAS = tuple(float(d) for d in np.logspace(-4, 1, 11))  # input-space steps δ
OUTPUTS = ("normalized", "raw")  # the constrained output D̂ fed to the loss, and the network output f
OUTPUT_LABELS = {"normalized": "constrained output D̂", "raw": "network output f"}
GRAD_LABELS = {"normalized": NORMALIZED_GRAD_NORM_LABEL, "raw": RAW_GRAD_NORM_LABEL}


# ---- measurements ----------------------------------------------------------------------------------


@dataclass
class InputGradients:
    """Values and input-gradient norms of D̂ and f at one sample set, each [N]."""

    out: Tensor
    out_grad_norm: Tensor
    raw: Tensor
    raw_grad_norm: Tensor
    raw_grad: Tensor  # [N, ...] ∇ₓ f, for the norm PGN divides by


def input_gradients(ctx: ProbeContext, x: Tensor) -> InputGradients:
    """``D̂(x)``, ``||∇ₓ D̂(x)||``, ``f(x)`` and ``||∇ₓ f(x)||`` per sample."""
    out, out_grad = value_and_input_grad(constrained_output(ctx), x)
    raw, raw_grad = value_and_input_grad(raw_output(ctx), x)
    return InputGradients(out, per_sample_norm(out_grad), raw, per_sample_norm(raw_grad), raw_grad)


def max_relative_deviation(measured: Tensor, expected: Tensor) -> float:
    """``max |measured − expected| / |expected|`` (0 where both are 0)."""
    denom = expected.abs().clamp_min(torch.finfo(expected.dtype).tiny)
    return float(((measured - expected).abs() / denom).max())


def closed_form_record(ctx: ProbeContext, grads: dict[str, InputGradients]) -> dict:
    """``{<method>_closed_form: {...}}`` comparing measured ``||∇ₓ D̂||`` with the method's closed form.

    For piecewise-linear f the divisor m is locally constant, so ``∇ₓ D̂ = c(f, m) ∇ₓ f`` with the method's
    own ``input_grad_scale`` c (docs/methods.md §1) and ``||∇ₓ D̂|| = |c(f, m)| · ||∇ₓ f||``, for every
    registered method, pgn included."""
    method = ctx.gradnorm_method
    if not method:
        return {}
    spec = GRADNORM_METHODS.get(method)
    tau, eps = float(ctx.setting("tau")), float(ctx.setting("eps"))
    record: dict = {"formula": f"|c(f, m)|·||∇f|| ({spec.source})", "K": 1.0 / tau, "eps": eps}
    deviations = []
    for name, g in grads.items():
        divisor = spec.norm(g.raw, g.raw_grad)
        expected = spec.input_grad_scale(g.raw, divisor, tau, eps).abs() * g.raw_grad_norm
        record[name] = to_list(expected)
        deviations.append(max_relative_deviation(g.out_grad_norm, expected))
    record["max_rel_deviation"] = max(deviations)
    return {f"{method}_closed_form": record}


def sample_sets(ctx: ProbeContext) -> dict[str, Tensor]:
    return {"real": ctx.real, "fake": ctx.fake}


def grad_norms_headline(record: dict) -> dict:
    """Median gradient norms per output and set, and the closed-form deviation when there is one."""
    headline = {"method": record["method"]}
    for output in OUTPUTS:
        for name in ("real", "fake"):
            headline[f"{output}_{name}_median"] = record[output][f"{name}_summary"]["median"]
    for key, value in record.items():
        if key.endswith("_closed_form"):
            headline[f"{key}_max_rel_deviation"] = value["max_rel_deviation"]
    return headline


@register_probe("grad-norms", figure="GraN Fig. 3 / Fig. 8a,c", headline=grad_norms_headline)
def grad_norms_probe(ctx: ProbeContext) -> dict:
    """Box plots of ``||∇ₓ D̂||`` and ``||∇ₓ f||`` at reals and fakes."""
    grads = {name: input_gradients(ctx, x) for name, x in sample_sets(ctx).items()}
    record: dict = {"method": ctx.gradnorm_method, "step": ctx.step}
    for output, attr in (("normalized", "out_grad_norm"), ("raw", "raw_grad_norm")):
        per_set = {name: getattr(g, attr) for name, g in grads.items()}
        record[output] = {name: to_list(v) for name, v in per_set.items()}
        record[output].update({f"{name}_summary": summarize(v) for name, v in per_set.items()})
    record.update(closed_form_record(ctx, grads))
    plot_grad_norms(ctx, record)
    return record


def plot_grad_norms(ctx: ProbeContext, record: dict) -> None:
    fig, axes = new_figure(2)
    for ax, output in zip(axes, OUTPUTS):
        groups = {name: np.asarray(record[output][name]) for name in sample_sets(ctx)}
        box_panel(ax, groups, GRAD_LABELS[output], OUTPUT_LABELS[output])
        if output == "normalized" and ctx.gradnorm_method in ("gran", "gran-inv"):
            ax.axhline(1.0 / float(ctx.setting("tau")), color="tab:red", ls="--", label="K = 1/τ")
            ax.legend(fontsize="small")
    save_figure(
        fig, plot_path(ctx, "grad-norms"), title=f"Input-gradient norms ({ctx.gradnorm_method or 'raw'})"
    )


# ---- finite differences along the gradient (GraN Fig. 4) -------------------------------------------


def unit_directions(grad: Tensor) -> Tensor:
    """``∇h / ||∇h||`` per sample (zero where the gradient vanishes), shaped like ``grad``."""
    norm = per_sample_norm(grad).clamp_min(torch.finfo(grad.dtype).tiny)
    return grad / norm.view(-1, *([1] * (grad.dim() - 1)))


def finite_difference_ratios(h: Callable[[Tensor], Tensor], x: Tensor, deltas: tuple[float, ...]) -> Tensor:
    """GraN Fig. 4: ``Δᵢ(δ) = |h(xᵢ + δ nᵢ) − h(xᵢ)| / δ`` with ``nᵢ = ∇h(xᵢ)/||∇h(xᵢ)||``; [len(δ), N]."""
    value, grad = value_and_input_grad(h, x)
    direction = unit_directions(grad)
    rows = []
    for delta in deltas:
        with torch.no_grad():
            shifted = batched(lambda chunk: h(chunk).detach(), x + delta * direction)
        rows.append((shifted - value).abs() / delta)
    return torch.stack(rows)  # [D, N]


def quantile_bands(ratios: Tensor) -> dict[str, list[float]]:
    """Per-δ median, 10/25/75/90 % quantiles and max of the ratios ``[D, N]``."""
    levels = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64)
    q = torch.quantile(ratios.to(torch.float64), levels, dim=1)  # [5, D]
    names = ("q10", "q25", "median", "q75", "q90")
    bands = {name: to_list(q[i]) for i, name in enumerate(names)}
    bands["max"] = to_list(ratios.max(dim=1).values)
    return bands


def finite_diff_headline(record: dict) -> dict:
    """Median slopes at the smallest and the largest δ, per output and set."""
    headline = {"deltas": [record["deltas"][0], record["deltas"][-1]]}
    for output in OUTPUTS:
        for name, bands in record[output].items():
            headline[f"{output}_{name}_median"] = [bands["median"][0], bands["median"][-1]]
    return headline


@register_probe("finite-diff", figure="GraN Fig. 4 / Fig. 8b,d", headline=finite_diff_headline)
def finite_diff_probe(ctx: ProbeContext) -> dict:
    """Finite-difference slopes of D̂ and f along their unit input gradients, for δ from 1e-4 to 10."""
    outputs = {"normalized": constrained_output(ctx), "raw": raw_output(ctx)}
    record: dict = {"deltas": list(FD_DELTAS), "method": ctx.gradnorm_method, "step": ctx.step}
    for output, h in outputs.items():
        record[output] = {
            name: quantile_bands(finite_difference_ratios(h, x, FD_DELTAS))
            for name, x in sample_sets(ctx).items()
        }
    plot_finite_diff(ctx, record)
    return record


def plot_finite_diff(ctx: ProbeContext, record: dict) -> None:
    fig, axes = new_figure(2)
    for ax, output in zip(axes, OUTPUTS):
        for name, bands in record[output].items():
            band_panel(
                ax, record["deltas"], bands["median"], bands["q10"], bands["q90"], name, SET_COLORS[name]
            )
        ax.set_xscale("log")
        ax.set_xlabel("δ (input-space step)")
        ax.set_ylabel("|h(x + δ n) − h(x)| / δ")
        ax.set_title(f"h = {OUTPUT_LABELS[output]} (median, 10–90 %)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    save_figure(fig, plot_path(ctx, "finite-diff"), title="Finite differences along the unit input gradient")
