"""Analytic Lipschitz upper bounds of the discriminator architectures (GraN App. D, Fig. 8), next to the
largest input-gradient norm actually measured.

A bound is a product of per-stage factors: each Conv/Linear contributes its operator norm, ReLU/LeakyReLU
(slope ≤ 1) contribute 1, a residual block contributes ``L(residual path) + L(shortcut)``, and pooling
contributes the norm of its linear map. Two things vary and are reported side by side:

- **layer norms** (``tracing.LAYER_NORM_SOURCES``): ``assumed`` (each spectrally normalized layer has norm
  ``γ·s``, as GraN App. D assumes; reshaped SN does NOT guarantee this for convolutions, whose operator norm
  may reach ``sqrt(∏⌈k/s⌉)`` times the reshaped ``σ``, Tsuzuku 2018 / BSSN §4, while ``sn-strict`` does),
  ``operator`` (measured operator norms of the current weights) and ``certified`` (a guaranteed upper bound
  of each operator norm);
- **pooling accounting**: ``gran-app-d`` reproduces GraN App. D (sum pooling over an ``h×w`` map counts
  ``h·w``, average pooling and the 2×2 down-sampling count 1: the 32² SNGAN ResNet gets ``2⁴·8·8 = 1024``
  with sum pooling and ``2⁴ = 16`` with average pooling); ``l2`` uses the exact ℓ2 norms of those linear
  maps: ``sqrt(h·w)`` for a global sum, ``1/sqrt(h·w)`` for a global mean, ``1/2`` for a 2×2 average pool.
  Both are valid upper bounds under their layer norms; ``l2`` is the tighter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lipgan.analysis.base import plot_path, register_probe, summarize
from lipgan.analysis.context import ProbeContext, per_sample_norm, raw_output, value_and_input_grad
from lipgan.analysis.plotting import RAW_GRAD_NORM_LABEL, box_panel, new_figure, save_figure
from lipgan.analysis.tracing import LAYER_NORM_SOURCES, Trace, trace_modules, unwrap_output_scale
from lipgan.nets.resnet import POOLINGS, DBlock, DBlockOptimized, ResNetDiscriminator
from lipgan.registry import Registry

Factor = tuple[str, float]
LayerNorm = Callable[[nn.Module], float]  # layer -> its operator-norm factor


class NoBoundError(Exception):
    """The network contains a stage whose Lipschitz factor this module cannot derive."""


@dataclass(frozen=True)
class PoolAccounting:
    """Factors of pooling stages: global pooling by kind as a function of the map size ``h·w``, and the
    2×2 average pooling of down-sampling residual blocks."""

    name: str
    global_pool: dict[str, Callable[[int], float]]
    avg_pool_2x2: float


GRAN_APP_D = PoolAccounting("gran-app-d", {"sum": lambda hw: float(hw), "avg": lambda hw: 1.0}, 1.0)
L2_EXACT = PoolAccounting("l2", {"sum": lambda hw: math.sqrt(hw), "avg": lambda hw: 1.0 / math.sqrt(hw)}, 0.5)

# (name, layer-norm source, pooling accounting) of every bound reported; the first is the headline `bound`.
BOUND_VARIANTS = (
    ("gran_app_d", "assumed", GRAN_APP_D),
    ("l2_assumed", "assumed", L2_EXACT),
    ("l2_operator", "operator", L2_EXACT),
    ("l2_certified", "certified", L2_EXACT),
)


# ---- leaf modules of plain chains ------------------------------------------------------------------


def leaky_relu_factor(module: nn.LeakyReLU, layer_norm: LayerNorm) -> float:
    """LeakyReLU with slope ``a`` is ``max(1, |a|)``-Lipschitz."""
    return max(1.0, abs(module.negative_slope))


def batch_norm_factor(module: nn.Module, layer_norm: LayerNorm) -> float:
    """Eval-mode batch norm is the per-channel affine map ``γ(x − μ)/sqrt(var + ε) + β``."""
    if module.training or module.running_var is None:
        raise NoBoundError(f"{module} mixes the samples of a batch (training mode)")
    gamma = module.weight if module.weight is not None else torch.ones_like(module.running_var)
    return float((gamma.abs() / (module.running_var + module.eps).sqrt()).max())


LEAF_FACTORS: dict[type, Callable[[nn.Module, LayerNorm], float]] = {
    nn.Linear: lambda m, norm: norm(m),
    nn.Conv1d: lambda m, norm: norm(m),
    nn.Conv2d: lambda m, norm: norm(m),
    nn.ReLU: lambda m, norm: 1.0,
    nn.LeakyReLU: leaky_relu_factor,
    nn.Identity: lambda m, norm: 1.0,
    nn.Flatten: lambda m, norm: 1.0,
    nn.Dropout: lambda m, norm: 1.0,
    nn.BatchNorm1d: batch_norm_factor,
    nn.BatchNorm2d: batch_norm_factor,
}


def leaf_factor(module: nn.Module, layer_norm: LayerNorm) -> float:
    """The Lipschitz factor of one leaf module of a chain, looked up along its class hierarchy (a spectrally
    normalized Conv2d is a generated subclass of Conv2d); NoBoundError for an unknown type."""
    for cls in type(module).__mro__:
        if cls in LEAF_FACTORS:
            return LEAF_FACTORS[cls](module, layer_norm)
    raise NoBoundError(f"no Lipschitz factor is known for {type(module).__name__}")


# ---- rules per architecture ---------------------------------------------------------------------------

BoundRule = Callable[[nn.Module, Trace, LayerNorm, PoolAccounting], list[Factor]]
BOUND_RULES: Registry[BoundRule] = Registry("Lipschitz bound rule")


def chain_bound(net: nn.Module, trace: Trace, layer_norm: LayerNorm, pools: PoolAccounting) -> list[Factor]:
    """A feed-forward chain (every operation a module, applied once, in order; flattening and reshaping
    are isometries): the product of its leaf modules' factors."""
    return [(name, leaf_factor(module, layer_norm)) for name, module in trace.order]


for _arch in ("sngan-cnn", "dcgan", "bssn-mnist", "mlp2d", "digits-cnn"):
    BOUND_RULES.register(_arch)(chain_bound)


def optimized_block_factor(block: DBlockOptimized, layer_norm: LayerNorm, pools: PoolAccounting) -> float:
    """Input_DBlock (GraN Fig. 7a): ``avgpool(conv2(relu(conv1 x))) + conv_sc(avgpool x)``."""
    residual = layer_norm(block.conv1) * layer_norm(block.conv2) * pools.avg_pool_2x2
    return residual + pools.avg_pool_2x2 * layer_norm(block.shortcut)


def dblock_factor(block: DBlock, layer_norm: LayerNorm, pools: PoolAccounting) -> float:
    """DBlock / Down2X_DBlock (GraN Fig. 7b–c): ``pool(conv2(relu(conv1(relu x)))) + pool(sc(x))`` with an
    identity or 1×1-conv shortcut; each ReLU counts 1."""
    pool = pools.avg_pool_2x2 if block.downsample else 1.0
    shortcut = 1.0 if isinstance(block.shortcut, nn.Identity) else layer_norm(block.shortcut)
    return pool * (layer_norm(block.conv1) * layer_norm(block.conv2) + shortcut)


BLOCK_FACTORS = {DBlockOptimized: optimized_block_factor, DBlock: dblock_factor}


def pooling_kind(D: ResNetDiscriminator) -> str:
    """The name under which ``D.pool`` is registered in ``lipgan.nets.resnet.POOLINGS``."""
    return next(name for name in POOLINGS if POOLINGS.get(name) is D.pool)


@BOUND_RULES.register("sngan-resnet")
def resnet_bound(D: nn.Module, trace: Trace, layer_norm: LayerNorm, pools: PoolAccounting) -> list[Factor]:
    """SNGAN ResNet (GraN App. D, Figs. 5, 7): residual blocks, ReLU, global pooling over the last ``h×w``
    map, Linear. With unit layers and ``gran-app-d`` accounting each block counts 2 (shortcut + residual)."""
    if not isinstance(D, ResNetDiscriminator):
        raise NoBoundError(f"the sngan-resnet rule needs a ResNetDiscriminator, got {type(D).__name__}")
    factors = [
        (f"blocks.{i} {type(block).__name__}", BLOCK_FACTORS[type(block)](block, layer_norm, pools))
        for i, block in enumerate(D.blocks)
    ]
    _, h, w = trace.output_shapes[D.blocks]
    kind = pooling_kind(D)
    factors.append(("relu", 1.0))
    factors.append((f"global {kind} pooling over {h}×{w}", pools.global_pool[kind](h * w)))
    factors.append(("fc", layer_norm(D.fc)))
    return factors


# ---- the probe -------------------------------------------------------------------------------------------


def architecture_bounds(ctx: ProbeContext, names: tuple[str, ...] | None = None) -> dict:
    """The bounds of ``BOUND_VARIANTS`` (all, or those in ``names``) for ``ctx.D``:
    ``{name: {"bound", "factors", ...}}``; a bound that cannot be derived is ``None`` with a ``reason``."""
    variants = [v for v in BOUND_VARIANTS if names is None or v[0] in names]
    if ctx.arch not in BOUND_RULES:
        reason = f"no bound rule for architecture {ctx.arch!r}; known: {', '.join(BOUND_RULES.names())}"
        return {name: {"bound": None, "factors": [], "reason": reason} for name, _, _ in variants}
    net, output_scale = unwrap_output_scale(ctx.D)
    trace = trace_modules(net, ctx.real[:2])
    rule = BOUND_RULES.get(ctx.arch)
    results = {}
    for name, source, pools in variants:
        norm_of = LAYER_NORM_SOURCES.get(source)
        cache: dict[nn.Module, float] = {}

        def layer_norm(layer: nn.Module, norm_of=norm_of, cache=cache) -> float:
            if layer not in cache:
                cache[layer] = norm_of(layer, trace.input_shapes[layer])
            return cache[layer]

        try:
            factors = rule(net, trace, layer_norm, pools)
        except NoBoundError as err:
            results[name] = {"bound": None, "factors": [], "reason": str(err)}
            continue
        if output_scale != 1.0:
            factors.append(("output scale K (SN†)", output_scale))
        bound = math.prod(f for _, f in factors)
        results[name] = {"bound": bound, "factors": factors, "layer_norms": source, "pooling": pools.name}
    return results


def random_inputs(ctx: ProbeContext, generator: torch.Generator) -> Tensor:
    """Uniform samples in the per-coordinate box spanned by the reals and fakes, as many as reals."""
    both = torch.cat([ctx.real, ctx.fake]).detach()
    low, high = both.min(dim=0).values, both.max(dim=0).values
    unit = torch.rand(ctx.real.shape, generator=generator, dtype=ctx.real.dtype).to(ctx.real.device)
    return low + (high - low) * unit


def empirical_grad_norms(ctx: ProbeContext) -> dict[str, Tensor]:
    """``||∇ₓ f||`` at reals, fakes and uniform random inputs (seeded), each [N]."""
    generator = torch.Generator().manual_seed(0)
    sets = {"real": ctx.real, "fake": ctx.fake, "random": random_inputs(ctx, generator)}
    return {name: per_sample_norm(value_and_input_grad(raw_output(ctx), x)[1]) for name, x in sets.items()}


def bound_headline(record: dict) -> dict:
    """Every bound by name, and the largest measured gradient norm."""
    headline = {name: entry["bound"] for name, entry in record["bounds"].items()}
    headline["empirical_max_grad_norm"] = record["empirical_max_grad_norm"]
    return headline


@register_probe("lipschitz-bound", figure="GraN App. D, Fig. 8", headline=bound_headline)
def lipschitz_bound_probe(ctx: ProbeContext) -> dict:
    """The architecture's analytic Lipschitz bounds and the largest measured ``||∇ₓ f||``."""
    bounds = architecture_bounds(ctx)
    norms = empirical_grad_norms(ctx)
    headline = bounds[BOUND_VARIANTS[0][0]]
    record = {
        "arch": ctx.arch,
        "spectral": ctx.setting("spectral"),
        "bound": headline["bound"],
        "factors": headline["factors"],
        "bounds": bounds,
        "empirical_max_grad_norm": max(float(v.max()) for v in norms.values()),
        "empirical": {name: summarize(v) for name, v in norms.items()},
        "note": (
            "'assumed' takes every normalized layer's operator norm to be γ·s: true for sn-strict up to its "
            "power-iteration error, but reshaped SN (sn, bsn) normalizes the reshaped kernel, whose σ can be "
            "up to sqrt(∏⌈k/s⌉) times below the convolution operator's norm; 'operator' uses the measured "
            "operator norms; 'certified' is guaranteed for the current weights"
            + ("" if ctx.setting("spectral") else "; this run has no SN: the 'assumed' bounds do not apply")
        ),
    }
    plot_bound(ctx, norms, bounds)
    return record


def plot_bound(ctx: ProbeContext, norms: dict[str, Tensor], bounds: dict) -> None:
    fig, (ax,) = new_figure(1, panel_size=(6.5, 4.5))
    box_panel(
        ax, {k: np.asarray(v.cpu(), dtype=float) for k, v in norms.items()}, RAW_GRAD_NORM_LABEL, "", log=True
    )
    styles = ("-", "--", "-.", ":")
    drawn = [(name, entry["bound"]) for name, entry in bounds.items() if entry["bound"] is not None]
    for (name, bound), style in zip(drawn, styles):
        ax.axhline(bound, ls=style, color="tab:red", label=f"{name}: {bound:.3g}")
    if drawn:
        ax.legend(fontsize="small", loc="best")
    # the 'assumed' bounds presume spectrally normalized layers; say so when this run has none
    caveat = "" if ctx.setting("spectral") else "\nno SN in this run: the 'assumed' bounds do not apply"
    save_figure(
        fig,
        plot_path(ctx, "lipschitz-bound"),
        title=f"Lipschitz bounds vs measured ‖∇ₓf‖ ({ctx.arch}){caveat}",
    )
