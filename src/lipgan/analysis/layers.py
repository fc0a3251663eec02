"""Per-layer probes of BSSN (Lin, Sekar, Fanti): gradient norms per layer (Fig. 2), the ratio test of its
Eq. 2 (Fig. 3), parameter variances against Thm 2 / Thm 3 (Fig. 7) and the ratio of a convolution's
operator norm to its reshaped-kernel norm (Fig. 20)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from lipgan.analysis.base import plot_path, register_probe
from lipgan.analysis.context import ProbeContext, build_critic, critic_scores
from lipgan.analysis.plotting import bar_pairs, new_figure, save_figure
from lipgan.analysis.tracing import (
    Trace,
    conv_coverage,
    effective_weight,
    operator_sigma,
    trace_modules,
    trainable_weight,
    unparametrized_copy,
)
from lipgan.constraints.spectral_sigma import bsn_sigma, reshaped_sigma

EQ2_SAMPLES = 16  # real samples whose per-sample gradient norms are averaged (BSSN Fig. 3 uses 64)


def layer_trace(ctx: ProbeContext, net: nn.Module | None = None) -> Trace:
    return trace_modules(net if net is not None else ctx.D, ctx.real[:2])


def d_loss_of(ctx: ProbeContext, net: nn.Module) -> Tensor:
    """The run's discriminator loss on ``ctx.real`` / ``ctx.fake`` through the critic of ``net``."""
    critic = ctx.critic if net is ctx.D else build_critic(net, ctx.constraint)
    out_real = critic_scores(critic, ctx.real, mode="full").out
    out_fake = critic_scores(critic, ctx.fake, mode="full").out
    return ctx.loss.d_loss(out_real, out_fake)


def weight_grads(loss: Tensor, weights: list[Tensor]) -> list[Tensor]:
    """``∂loss/∂W`` for each weight (zeros for a weight the loss does not reach), detached."""
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g.detach() for g, w in zip(grads, weights)]


def weight_grad_norms(loss: Tensor, weights: list[Tensor]) -> list[float]:
    """Frobenius norms of ``∂loss/∂W`` for each weight."""
    return [float(g.norm()) for g in weight_grads(loss, weights)]


def trainable_weight_grads(ctx: ProbeContext) -> tuple[list[str], list[str], list[Tensor]]:
    """``(layer names, weight kinds, ∂L_D/∂W)`` for the trainable weight of every Conv/Linear layer in
    forward order (``original`` under spectral normalization, else ``weight``)."""
    names, layers = zip(*layer_trace(ctx).weighted_layers())
    weights, kinds = zip(*(trainable_weight(layer) for layer in layers))
    with torch.enable_grad():
        grads = weight_grads(d_loss_of(ctx, ctx.D), list(weights))
    return list(names), list(kinds), grads


def effective_weight_grads(ctx: ProbeContext) -> tuple[list[str], list[Tensor], list[Tensor]]:
    """``(layer names, W̄, ∂L_D/∂W̄)`` w.r.t. the normalized weights the forward uses, taken on a copy of D
    whose parametrized weights are frozen into plain Parameters."""
    clone = unparametrized_copy(ctx.D)
    names, layers = zip(*layer_trace(ctx, clone).weighted_layers())
    weights = [layer.weight for layer in layers]
    with torch.enable_grad():
        grads = weight_grads(d_loss_of(ctx, clone), weights)
    return list(names), [w.detach() for w in weights], grads


def layer_grad_norms(ctx: ProbeContext) -> dict:
    """BSSN Fig. 2: ``||∂L_D/∂W||_F`` per layer, for the trainable weight (``original`` under SN) and for
    the normalized weight ``W̄`` the forward uses."""
    names, kinds, grads = trainable_weight_grads(ctx)
    _, _, effective = effective_weight_grads(ctx)
    return {
        "layers": names,
        "weight_kind": kinds,
        "grad_norm": [float(g.norm()) for g in grads],
        "grad_norm_effective": [float(g.norm()) for g in effective],
    }


def layer_grads_headline(record: dict) -> dict:
    return {name: record[name] for name in ("layers", "grad_norm")}


@register_probe("layer-grads", figure="BSSN Fig. 2", headline=layer_grads_headline)
def layer_grads_probe(ctx: ProbeContext) -> dict:
    """Gradient norm of the D loss w.r.t. each layer's weight, by layer index."""
    record = layer_grad_norms(ctx)
    record["note"] = "grad_norm is w.r.t. the trainable weight ('original' = pre-normalization under SN)"
    fig, (ax,) = new_figure(1, panel_size=(7.0, 4.5))
    labels = [f"{i + 1}: {n}" for i, n in enumerate(record["layers"])]
    series = {"trainable weight": record["grad_norm"], "normalized weight W̄": record["grad_norm_effective"]}
    bar_pairs(ax, labels, series, r"$\|\partial L_D / \partial W\|_F$")
    ax.set_xlabel("layer (forward order)")
    save_figure(fig, plot_path(ctx, "layer-grads"), title="Per-layer gradient norms of the D loss")
    return record


# ---- BSSN Eq. 2 ------------------------------------------------------------------------------------------


def per_sample_layer_grad_norms(net: nn.Module, weights: list[Tensor], x: Tensor) -> Tensor:
    """``||∇_{W_l} f(x_i)||_F`` for every sample and layer, ``[N, L]``."""
    rows = []
    with torch.enable_grad():
        for sample in x.split(1):
            rows.append(weight_grad_norms(net(sample).sum(), weights))
    return torch.tensor(rows, dtype=torch.float64)


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when ``b`` is not positive (a dead layer has no gradient)."""
    return a / b if b > 0 else math.nan


def eq2_log_deviation(pairs: list[dict]) -> float:
    """Mean ``|ln(grad_ratio / inv_sigma_ratio)|`` over the layer pairs with positive ratios: 0 exactly when
    Eq. 2 holds."""
    logs = [
        abs(math.log(p["grad_ratio"] / p["inv_sigma_ratio"]))
        for p in pairs
        if p["grad_ratio"] > 0 and p["inv_sigma_ratio"] > 0
    ]
    return sum(logs) / len(logs) if logs else math.nan


def ratio_pairs(grad_norms: list[float], sigmas: list[float], pairs: list[tuple[int, int]]) -> list[dict]:
    """BSSN Eq. 2: ``||∇_{w_i} D|| / ||∇_{w_j} D||`` against ``||w_j||_sp / ||w_i||_sp`` for each pair."""
    return [
        {
            "i": i + 1,
            "j": j + 1,
            "grad_ratio": ratio(grad_norms[i], grad_norms[j]),
            "inv_sigma_ratio": ratio(sigmas[j], sigmas[i]),
        }
        for i, j in pairs
    ]


@register_probe("eq2-ratio", figure="BSSN Fig. 3 (Eq. 2)")
def eq2_ratio_probe(ctx: ProbeContext) -> dict:
    """Gradient-norm ratios of layer pairs vs inverse spectral-norm ratios, on the normalized weights ``W̄``
    (BSSN §3 differentiates ``f`` w.r.t. ``w' = w/σ``); per-sample norms averaged over real samples."""
    clone = unparametrized_copy(ctx.D)
    trace = layer_trace(ctx, clone)
    names, layers = zip(*trace.weighted_layers())
    x = ctx.real[:EQ2_SAMPLES]
    grads = per_sample_layer_grad_norms(clone, [layer.weight for layer in layers], x).mean(dim=0).tolist()
    sigmas = [operator_sigma(layer, effective_weight(layer), trace.input_shapes[layer]) for layer in layers]
    n = len(layers)
    record = {
        "layers": list(names),
        "n_samples": int(x.shape[0]),
        "grad_norm": grads,
        "sigma_operator": sigmas,
        "pairs_consecutive": ratio_pairs(grads, sigmas, [(i + 1, i) for i in range(n - 1)]),
        "pairs_first": ratio_pairs(grads, sigmas, [(i, 0) for i in range(1, n)]),
    }
    record["eq2_log_deviation"] = eq2_log_deviation(record["pairs_first"])
    plot_eq2(ctx, record)
    return record


def plot_eq2(ctx: ProbeContext, record: dict) -> None:
    fig, (ax,) = new_figure(1, panel_size=(5.5, 5.0))
    for key, marker, label in (
        ("pairs_consecutive", "o", "layer i+1 / layer i"),
        ("pairs_first", "x", "layer i / layer 1"),
    ):
        xs = [p["inv_sigma_ratio"] for p in record[key]]
        ys = [p["grad_ratio"] for p in record[key]]
        ax.scatter(xs, ys, marker=marker, label=label)
    pairs = record["pairs_consecutive"] + record["pairs_first"]
    positive = [v for p in pairs for v in (p["grad_ratio"], p["inv_sigma_ratio"]) if v > 0] or [1.0]
    lo, hi = min(positive) / 1.5, max(positive) * 1.5
    ax.plot([lo, hi], [lo, hi], color="gray", ls="--", label="y = x (Eq. 2)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\|w_j\|_{sp} \,/\, \|w_i\|_{sp}$")
    ax.set_ylabel(r"$\|\nabla_{w_i} D\|_F \,/\, \|\nabla_{w_j} D\|_F$")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    save_figure(fig, plot_path(ctx, "eq2-ratio"), title="BSSN Eq. 2: gradient ratio vs inverse σ ratio")


# ---- parameter variance (BSSN Thm 2 / Eq. 3, Thm 3) -----------------------------------------------------


def lecun_bound(weight: Tensor) -> float:
    """BSSN Thm 2, Eq. 3: ``Var(a_ij/||A||_sp) ≤ 1/max(m, n)`` for the reshaped ``m × n`` kernel."""
    return 1.0 / max(weight.shape[0], weight[0].numel())


def xavier_bound(weight: Tensor) -> float:
    """BSSN Thm 3: ``Var(w_ij/σ_w) ≤ 2/(c_in·k + c_out·k)`` (``k = k_w·k_h``) under BSN; a linear layer
    (where BSN is SN) falls back to Thm 2."""
    if weight.dim() == 2:
        return lecun_bound(weight)
    c_out, c_in, k = weight.shape[0], weight.shape[1], weight[0, 0].numel()
    return 2.0 / (c_in * k + c_out * k)


def xavier_condition(weight: Tensor) -> bool:
    """Thm 3's hypothesis ``k_w·k_h ≥ max(c_out/c_in, c_in/c_out)`` (always true for a linear layer)."""
    if weight.dim() == 2:
        return True
    c_out, c_in, k = weight.shape[0], weight.shape[1], weight[0, 0].numel()
    return k >= max(c_out / c_in, c_in / c_out)


# variant -> (exact σ of a raw weight, variance bound, theorem name)
VARIANCE_THEOREMS = {
    "sn": (reshaped_sigma, lecun_bound, "BSSN Thm 2 (Eq. 3)"),
    "bsn": (bsn_sigma, xavier_bound, "BSSN Thm 3"),
}


def layer_variance_row(name: str, layer: nn.Module, variant: str, scale: float) -> dict:
    """Variances of one layer's weights: as used (``W̄``) and with the exact ``σ`` of ``variant``."""
    sigma_fn, bound_fn, theorem = VARIANCE_THEOREMS[variant]
    raw, _ = trainable_weight(layer)
    raw = raw.detach()
    exact = scale * raw / sigma_fn(raw)
    return {
        "name": name,
        "shape": list(raw.shape),
        "variance": float(effective_weight(layer).var(unbiased=False)),
        "variance_exact_sigma": float(exact.var(unbiased=False)),
        "bound": scale**2 * bound_fn(raw),
        "theorem": theorem,
        "hypothesis_holds": variant == "sn" or xavier_condition(raw),
    }


@register_probe("param-variance", figure="BSSN Fig. 7 (Eq. 3, Thm 3)")
def param_variance_probe(ctx: ProbeContext) -> dict:
    """Per-layer variance of the normalized weights against ``s²/max(m, n)`` (SN) or
    ``2 s²/(c_in k + c_out k)`` (BSN). For sn-strict or without spectral normalization the SN bound
    (reshaped σ) is the reference."""
    variant = "bsn" if ctx.setting("spectral") == "bsn" else "sn"
    scale = float(ctx.setting("spectral_scale")) if ctx.setting("spectral") else 1.0
    rows = [layer_variance_row(n, m, variant, scale) for n, m in layer_trace(ctx).weighted_layers()]
    fig, (ax,) = new_figure(1, panel_size=(7.0, 4.5))
    index = np.arange(1, len(rows) + 1)
    ax.plot(index, [r["variance"] for r in rows], "o-", label="Var(W̄) as used")
    ax.plot(index, [r["variance_exact_sigma"] for r in rows], "x:", label="Var(s·W/σ) with exact σ")
    ax.plot(
        index,
        [r["bound"] for r in rows],
        "s--",
        color="tab:red",
        label=f"bound ({VARIANCE_THEOREMS[variant][2]})",
    )
    ax.set_yscale("log")
    ax.set_xlabel("layer (forward order)")
    ax.set_ylabel("parameter variance")
    ax.set_xticks(index)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    save_figure(fig, plot_path(ctx, "param-variance"), title="Parameter variance vs the BSSN bound")
    within = [r["variance"] <= r["bound"] for r in rows]
    return {
        "variant": variant,
        "scale": scale,
        "layers_within_bound": sum(within),
        "n_layers": len(rows),
        "max_variance_over_bound": max(r["variance"] / r["bound"] for r in rows),
        "layers": rows,
    }


# ---- ||conv operator|| / ||reshaped W|| (BSSN Fig. 20) --------------------------------------------------


def is_conv(layer: nn.Module) -> bool:
    return isinstance(layer, nn.Conv1d | nn.Conv2d)


def has_conv_layers(ctx: ProbeContext) -> bool:
    return any(is_conv(m) for m in ctx.D.modules())


@register_probe("sn-ratio", figure="BSSN Fig. 20", applies=has_conv_layers)
def sn_ratio_probe(ctx: ProbeContext) -> dict:
    """Per conv layer, ``||conv operator||_sp / ||reshaped W̄||_sp`` on the layer's actual input size, with
    Tsuzuku et al.'s bounds ``1 ≤ ratio ≤ sqrt(∏⌈k/s⌉)``."""
    trace = layer_trace(ctx)
    rows = []
    for name, layer in trace.weighted_layers():
        if not is_conv(layer):
            continue
        weight = effective_weight(layer)
        op = operator_sigma(layer, weight, trace.input_shapes[layer])
        reshaped = float(reshaped_sigma(weight))
        rows.append(
            {
                "name": name,
                "input_shape": list(trace.input_shapes[layer]),
                "operator_sigma": op,
                "reshaped_sigma": reshaped,
                "ratio": op / reshaped,
                "lower_bound": 1.0,
                "upper_bound": math.sqrt(conv_coverage(layer)),
            }
        )
    fig, (ax,) = new_figure(1, panel_size=(7.0, 4.5))
    index = np.arange(1, len(rows) + 1)
    ax.plot(index, [r["ratio"] for r in rows], "o-", label="‖Conv‖_sp / ‖W‖_sp")
    ax.plot(index, [r["upper_bound"] for r in rows], "v--", color="tab:red", label="upper bound sqrt(∏⌈k/s⌉)")
    ax.axhline(1.0, color="tab:green", ls="--", label="lower bound 1")
    ax.set_xticks(index, [r["name"] for r in rows], rotation=45, ha="right", fontsize="small")
    ax.set_ylabel("spectral-norm ratio")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    save_figure(fig, plot_path(ctx, "sn-ratio"), title="Operator norm vs reshaped-kernel norm per conv layer")
    ratios = [r["ratio"] for r in rows]
    return {"min_ratio": min(ratios), "max_ratio": max(ratios), "layers": rows}
