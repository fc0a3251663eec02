"""Per-layer views of a discriminator for the layer probes and the Lipschitz bound: which modules run in
which order on which input shapes, their trainable and effective (normalized) weights, and their spectral
norms as matrices and as convolution operators."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from lipgan.constraints.spectral import OutputScale, SpectralParametrization
from lipgan.constraints.spectral_sigma import ConvGeometry, conv_operator_sigma, matrix_sigma, reshaped_sigma
from lipgan.nets.base import WEIGHTED_LAYERS, trainable_weight  # noqa: F401 (re-exported for the probes)
from lipgan.registry import Registry

OPERATOR_POWER_ITERATIONS = 200  # power steps for a convolution's operator norm (from a random start)
DENSE_OPERATOR_MAX_INPUTS = 1024  # convolutions on at most this many input entries get an exact SVD


@dataclass
class Trace:
    """One forward of a network: leaf modules in call order, and every module's per-sample input and output
    shapes (without the batch dimension)."""

    order: list[tuple[str, nn.Module]] = field(default_factory=list)
    input_shapes: dict[nn.Module, tuple[int, ...]] = field(default_factory=dict)
    output_shapes: dict[nn.Module, tuple[int, ...]] = field(default_factory=dict)

    def weighted_layers(self) -> list[tuple[str, nn.Module]]:
        """The Conv/Linear layers in the order the forward reaches them."""
        return [(name, m) for name, m in self.order if isinstance(m, WEIGHTED_LAYERS)]


def is_leaf(module: nn.Module) -> bool:
    """A module without submodules, or a weighted layer (whose parametrization container is a child)."""
    return isinstance(module, WEIGHTED_LAYERS) or next(module.children(), None) is None


def is_parametrization_part(name: str) -> bool:
    """Whether a qualified module name lies inside a ``parametrize`` container (called on weight access)."""
    return "parametrizations" in name.split(".")


def trace_modules(net: nn.Module, x: Tensor) -> Trace:
    """Run ``net`` once on ``x`` (no gradient) and record the call order and shapes of its modules."""
    trace = Trace()
    names = {m: name for name, m in net.named_modules()}
    hooks = []

    def before(module, args):
        if not args or not isinstance(args[0], Tensor):
            return
        trace.input_shapes.setdefault(module, tuple(args[0].shape[1:]))
        if is_leaf(module):
            trace.order.append((names[module], module))

    def after(module, args, output):
        if isinstance(output, Tensor):
            trace.output_shapes.setdefault(module, tuple(output.shape[1:]))

    for module, name in names.items():
        if module is not net and not is_parametrization_part(name):
            hooks += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for hook in hooks:
            hook.remove()
    return trace


def unwrap_output_scale(net: nn.Module) -> tuple[nn.Module, float]:
    """``(inner network, k)`` for GraN's SN† wrapper ``OutputScale(net, k)``; ``(net, 1)`` otherwise."""
    if isinstance(net, OutputScale):
        return net.net, net.k
    return net, 1.0


def is_parametrized(layer: nn.Module) -> bool:
    return parametrize.is_parametrized(layer, "weight")


def effective_weight(layer: nn.Module) -> Tensor:
    """The weight the forward uses (``γ·s·W/σ`` under spectral normalization), detached."""
    with torch.no_grad():
        return layer.weight.detach().clone()


def spectral_gain(layer: nn.Module) -> float | None:
    """``γ·s`` of the layer's spectral parametrization, or None when it has none."""
    if not is_parametrized(layer):
        return None
    gains = [float(p.gain()) for p in layer.parametrizations.weight if isinstance(p, SpectralParametrization)]
    return math.prod(gains) if gains else None


def unparametrized_copy(net: nn.Module) -> nn.Module:
    """A deep copy of ``net`` whose parametrized weights are plain Parameters holding the current normalized
    weights, so gradients can be taken w.r.t. ``W̄`` itself (BSSN §3 differentiates w.r.t. ``w' = w/σ``)."""
    clone = copy.deepcopy(net)
    clone.eval()
    for module in clone.modules():
        if is_parametrized(module):
            detach_parametrized_class(module)
            with torch.no_grad():
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return clone


def detach_parametrized_class(module: nn.Module) -> None:
    """Give a deep-copied parametrized module its own copy of its generated class. ``deepcopy`` shares
    classes, and removing a parametrization deletes the weight property from the class, which would break
    the original module too."""
    cls = module.__class__
    module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))


def conv_coverage(layer: nn.Module) -> int:
    """The most outputs of a convolution that read any one input entry: ``∏ ⌈k/s⌉`` (dilation 1), else
    ``∏ k``. It bounds the operator norm by ``sqrt(coverage)·σ(reshaped W)`` (Tsuzuku et al. 2018, Cor. 1)."""
    if isinstance(layer, nn.Linear):
        return 1
    if all(d == 1 for d in layer.dilation):
        return math.prod(math.ceil(k / s) for k, s in zip(layer.kernel_size, layer.stride))
    return math.prod(layer.kernel_size)


def conv_matrix(geometry: ConvGeometry, weight: Tensor, input_shape: tuple[int, ...]) -> Tensor:
    """The convolution (bias excluded) as a dense ``[outputs, inputs]`` matrix, column ``j`` being its
    response to the ``j``-th unit input."""
    n_inputs = math.prod(input_shape)
    basis = torch.eye(n_inputs, dtype=weight.dtype, device=weight.device).view(n_inputs, *input_shape)
    return geometry.apply(basis, weight).flatten(1).T


def operator_sigma(layer: nn.Module, weight: Tensor, input_shape: tuple[int, ...]) -> float:
    """Spectral norm of the layer as a linear map on inputs of ``input_shape`` (Farnia 2018; BSSN §2):
    ``σ(W)`` for a Linear; for a Conv the exact SVD of its matrix on small inputs, else power iteration
    (``OPERATOR_POWER_ITERATIONS`` steps, a close lower estimate)."""
    if isinstance(layer, nn.Linear):
        return float(matrix_sigma(weight))
    g = ConvGeometry.from_module(layer)
    if math.prod(input_shape) <= DENSE_OPERATOR_MAX_INPUTS:
        with torch.no_grad():
            return float(matrix_sigma(conv_matrix(g, weight, input_shape)))
    sigma = conv_operator_sigma(
        weight,
        input_shape,
        g.stride,
        g.padding,
        g.dilation,
        g.groups,
        g.transposed,
        g.output_padding,
        n_iter=OPERATOR_POWER_ITERATIONS,
    )
    return float(sigma)


def certified_sigma(layer: nn.Module, weight: Tensor) -> float:
    """An upper bound of the layer's operator norm that needs no iteration: ``sqrt(coverage)·σ(reshaped W)``
    (exact for a Linear)."""
    return math.sqrt(conv_coverage(layer)) * float(reshaped_sigma(weight))


LAYER_NORM_SOURCES: Registry = Registry("layer norm source")


@LAYER_NORM_SOURCES.register("assumed")
def assumed_layer_norm(layer: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The paper's assumption (GraN App. D): a spectrally normalized layer has operator norm ``γ·s`` (1 for
    plain SN); an unnormalized layer is counted as 1."""
    gain = spectral_gain(layer)
    return 1.0 if gain is None else gain


@LAYER_NORM_SOURCES.register("operator")
def operator_layer_norm(layer: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The measured operator norm of the current effective weight (exact SVD or power iteration)."""
    return operator_sigma(layer, effective_weight(layer), input_shape)


@LAYER_NORM_SOURCES.register("certified")
def certified_layer_norm(layer: nn.Module, input_shape: tuple[int, ...]) -> float:
    """A guaranteed upper bound of the current effective weight's operator norm (Tsuzuku et al. 2018)."""
    return certified_sigma(layer, effective_weight(layer))
