"""Spectral normalizations of single layers (docs/methods.md §3): ``W̄ = γ·s·W/σ(W)``.

Each variant is a ``torch.nn.utils.parametrize`` parametrization that keeps its power-iteration state in
buffers. As in ``torch.nn.utils.parametrizations.spectral_norm``, the state is advanced under ``no_grad``
(in place) ``n_power_iterations`` times per forward in training mode only, is frozen in eval mode, and is
cloned before ``σ = uᵀ W v`` is formed, so the gradient flows through ``W`` alone. Train and eval forwards
read ``σ`` from the state in the same way, so an eval forward right after a train forward gives the same
weight. The state is part of ``state_dict``.

Variants (``SPECTRAL_VARIANTS``):

- ``sn``: ``σ(W.reshape(c_out, −1))`` (Miyato 2018, SN_w in BSSN §2); buffer ``u`` ``[c_out]``.
- ``sn-strict``: the operator norm of the convolution on a fixed input shape (Farnia 2018, Gouk 2018,
  SN_Conv in BSSN §2, §4); buffer ``u`` ``[1, C, H, W]``. For a linear layer it is ``sn``.
- ``bsn``: ``(σ(W.reshape(c_out, −1)) + σ(W.reshape(c_in, −1)))/2`` (BSSN §5.1); buffers ``u`` ``[c_out]``
  and ``v`` ``[c_in]`` (the left vectors of the two reshapes). For a linear layer it is ``sn``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from lipgan.constraints.spectral_sigma import (
    ConvGeometry,
    bsn_sigma,
    conv_operator_sigma,
    matrix_power_step,
    matrix_sigma_at,
    normalize,
    operator_power_step,
    operator_sigma_at,
    output_channel_dim,
    reshaped_sigma,
    weight_matrix,
)
from lipgan.errors import ConfigError
from lipgan.registry import Registry

SUPPORTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)
# A class embedding [num_classes, dim] is normalized as a matrix, as SNGAN-projection's SNEmbedding does
# (docs/methods.md §7.8); every variant treats a matrix as `sn` does.
EMBEDDING_LAYERS = (nn.Embedding,)
INIT_POWER_ITERATIONS = 15
SPECTRAL_VARIANTS: Registry[type[SpectralParametrization]] = Registry("spectral normalization")
GAMMA_MODES: Registry[Callable[[nn.Module], Callable[[], nn.Parameter]]] = Registry("gamma mode")


def is_transposed(layer: nn.Module) -> bool:
    """Whether the layer's weight is laid out ``[c_in, c_out, ...]`` (a transposed convolution)."""
    return bool(getattr(layer, "transposed", False))


class SpectralParametrization(nn.Module):
    """``W̄ = γ·s·W/σ(W)`` with ``σ`` estimated from persistent power-iteration state.

    Subclasses define ``advance(weight, n_steps)`` (update the buffers, no gradient) and
    ``sigma(weight)`` (differentiable in ``weight``, read from the buffers)."""

    variant = ""

    def __init__(
        self,
        scale: float,
        n_power_iterations: int,
        gamma: nn.Parameter | None,
        transposed: bool,
        input_shape: tuple[int, ...] | None,
    ):
        super().__init__()
        if n_power_iterations < 1:
            raise ConfigError(f"n_power_iterations must be >= 1, got {n_power_iterations}")
        self.scale = float(scale)
        self.n_power_iterations = n_power_iterations
        self.transposed = transposed
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.register_parameter("gamma", gamma)

    @classmethod
    def for_layer(cls, layer: nn.Module, weight: torch.Tensor, **settings) -> SpectralParametrization:
        """The parametrization of this variant for ``layer`` (may defer to ``sn`` for linear layers)."""
        return cls(weight.detach(), transposed=is_transposed(layer), **settings)

    def advance(self, weight: torch.Tensor, n_steps: int) -> None:
        raise NotImplementedError

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def gain(self) -> torch.Tensor | float:
        """``γ·s``: the fixed scale of SSN / BSSN (BSSN §5.2, LipReg Eq. 1) times the trainable γ."""
        return self.scale if self.gamma is None else self.scale * self.gamma

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.advance(weight.detach(), self.n_power_iterations)
        return self.gain() * weight / self.sigma(weight)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, n_power_iterations={self.n_power_iterations}"


def _random_unit(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    return normalize(like.new_empty(shape).normal_())


@SPECTRAL_VARIANTS.register("sn")
class ReshapedSpectralNorm(SpectralParametrization):
    """SN_w (Miyato 2018; BSSN §2): divides by ``σ(W.reshape(c_out, −1))``; with ``s`` it is SSN (BSSN
    §5.2) and LipReg's ``k_SN`` (Eq. 1)."""

    variant = "sn"

    def __init__(self, weight: torch.Tensor, transposed: bool = False, **settings):
        super().__init__(transposed=transposed, **settings)
        self.row_dim = output_channel_dim(transposed) if weight.dim() > 2 else 0
        self.register_buffer("u", _random_unit((weight.shape[self.row_dim],), weight))
        self.advance(weight, INIT_POWER_ITERATIONS)

    def advance(self, weight: torch.Tensor, n_steps: int) -> None:
        matrix = weight_matrix(weight, self.row_dim)  # [c_out, c_in·k]
        u = self.u
        for _ in range(n_steps):
            u = matrix_power_step(matrix, u)
        with torch.no_grad():
            self.u.copy_(u)

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        return matrix_sigma_at(weight_matrix(weight, self.row_dim), self.u.clone())


@SPECTRAL_VARIANTS.register("bsn")
class BidirectionalSpectralNorm(SpectralParametrization):
    """BSN (BSSN §5.1, Thm 3): divides a kernel by the mean of the spectral norms of its
    ``c_out × (c_in·k)`` and ``c_in × (c_out·k)`` reshapes; with ``s`` it is BSSN (§5.2)."""

    variant = "bsn"

    def __init__(self, weight: torch.Tensor, transposed: bool = False, **settings):
        super().__init__(transposed=transposed, **settings)
        self.out_dim = output_channel_dim(transposed)
        self.in_dim = 1 - self.out_dim
        self.register_buffer("u", _random_unit((weight.shape[self.out_dim],), weight))
        self.register_buffer("v", _random_unit((weight.shape[self.in_dim],), weight))
        self.advance(weight, INIT_POWER_ITERATIONS)

    @classmethod
    def for_layer(cls, layer: nn.Module, weight: torch.Tensor, **settings) -> SpectralParametrization:
        """A linear layer keeps the SN normalization (BSSN §5.1)."""
        if weight.dim() == 2:
            return ReshapedSpectralNorm(weight.detach(), **settings)
        return super().for_layer(layer, weight, **settings)

    def advance(self, weight: torch.Tensor, n_steps: int) -> None:
        out_matrix = weight_matrix(weight, self.out_dim)  # [c_out, c_in·k]
        in_matrix = weight_matrix(weight, self.in_dim)  # [c_in, c_out·k]
        u, v = self.u, self.v
        for _ in range(n_steps):
            u = matrix_power_step(out_matrix, u)
            v = matrix_power_step(in_matrix, v)
        with torch.no_grad():
            self.u.copy_(u)
            self.v.copy_(v)

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        sigma_out = matrix_sigma_at(weight_matrix(weight, self.out_dim), self.u.clone())
        sigma_in = matrix_sigma_at(weight_matrix(weight, self.in_dim), self.v.clone())
        return (sigma_out + sigma_in) / 2


@SPECTRAL_VARIANTS.register("sn-strict")
class OperatorSpectralNorm(SpectralParametrization):
    """SN_Conv (Farnia 2018; Gouk 2018; BSSN §2, §4): divides by the spectral norm of the convolution
    operator on inputs of shape ``input_shape`` ``(C, *spatial)``, by power iteration with
    ``conv`` / ``conv_transpose`` on a persistent input-shaped vector ``u`` ``[1, C, *spatial]``."""

    variant = "sn-strict"

    def __init__(
        self, weight: torch.Tensor, geometry: ConvGeometry, input_shape: tuple[int, ...], **settings
    ):
        super().__init__(transposed=geometry.transposed, input_shape=input_shape, **settings)
        self.geometry = geometry
        self.register_buffer("u", _random_unit((1, *self.input_shape), weight))
        self.advance(weight, INIT_POWER_ITERATIONS)

    @classmethod
    def for_layer(cls, layer: nn.Module, weight: torch.Tensor, **settings) -> SpectralParametrization:
        """Linear layers are their own operator (use ``sn``); convolutions need ``input_shape``."""
        if weight.dim() == 2:
            return ReshapedSpectralNorm(weight.detach(), **settings)
        input_shape = settings.pop("input_shape")
        _check_input_shape(layer, weight, input_shape)
        return cls(weight.detach(), ConvGeometry.from_module(layer), input_shape, **settings)

    def advance(self, weight: torch.Tensor, n_steps: int) -> None:
        u = self.u
        for _ in range(n_steps):
            u = operator_power_step(self.geometry, weight, u)
        with torch.no_grad():
            self.u.copy_(u)

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        return operator_sigma_at(self.geometry, weight, self.u.clone())


def _check_input_shape(layer: nn.Module, weight: torch.Tensor, input_shape) -> None:
    """sn-strict needs the per-sample input shape ``(C, *spatial)`` of a convolution."""
    if input_shape is None:
        raise ConfigError(
            f"sn-strict needs the input shape of {layer}; pass input_shape=(C, H, W) to spectral_norm "
            "or example_input to apply_spectral_norm"
        )
    if len(input_shape) != weight.dim() - 1 or input_shape[0] != layer.in_channels:
        raise ConfigError(f"input shape {tuple(input_shape)} does not fit {layer}")


def spectral_norm(
    module: nn.Module,
    variant: str = "sn",
    scale: float = 1.0,
    n_power_iterations: int = 1,
    input_shape: tuple[int, ...] | None = None,
    name: str = "weight",
    gamma: nn.Parameter | None = None,
) -> nn.Module:
    """Register the ``variant`` normalization ``W̄ = γ·s·W/σ`` on ``module.<name>`` and return ``module``.

    ``input_shape`` ``(C, H, W)`` (without batch) is required by ``sn-strict`` on convolutions. ``gamma``
    is an optional trainable scalar (the "γ" variants of Miyato App. E / BSSN App. O); pass the same
    Parameter to several layers to share it."""
    variant_cls = SPECTRAL_VARIANTS.get(variant)
    if not isinstance(module, SUPPORTED_LAYERS + EMBEDDING_LAYERS):
        raise ConfigError(
            f"spectral normalization supports Linear, ConvNd, ConvTransposeNd and Embedding, not {module}"
        )
    if list(_spectral_parametrizations_of(module, name)):
        raise ConfigError(f"{name} of {module} is already spectrally normalized")
    weight = getattr(module, name)
    parametrization = variant_cls.for_layer(
        module,
        weight,
        scale=scale,
        n_power_iterations=n_power_iterations,
        gamma=gamma,
        input_shape=input_shape,
    )
    parametrize.register_parametrization(module, name, parametrization)
    return module


def _one_shared_gamma(net: nn.Module) -> Callable[[], nn.Parameter]:
    """Same γ: one trainable scalar for all layers, registered on the net as ``sn_gamma``."""
    reference = next(p for p in net.parameters())
    net.register_parameter(
        "sn_gamma", nn.Parameter(torch.ones((), dtype=reference.dtype, device=reference.device))
    )
    return lambda: net.sn_gamma


def _one_gamma_per_layer(net: nn.Module) -> Callable[[], nn.Parameter]:
    """Diff. γ: a separate trainable scalar inside each layer's parametrization."""
    reference = next(p for p in net.parameters())
    return lambda: nn.Parameter(torch.ones((), dtype=reference.dtype, device=reference.device))


GAMMA_MODES.register("same")(_one_shared_gamma)
GAMMA_MODES.register("diff")(_one_gamma_per_layer)


def record_input_shapes(net: nn.Module, example_input, layers: list[nn.Module]) -> dict[nn.Module, tuple]:
    """Run ``example_input`` (a tensor or a tuple of arguments) through ``net`` once, in eval mode and
    without gradients, and return the per-sample input shape ``(C, *spatial)`` of each layer reached."""
    shapes: dict[nn.Module, tuple] = {}

    def record(layer, args):
        shape = tuple(args[0].shape[1:])
        if shapes.setdefault(layer, shape) != shape:
            raise ConfigError(f"{layer} is called on inputs of shapes {shapes[layer]} and {shape}")

    handles = [layer.register_forward_pre_hook(record) for layer in layers]
    modes = {m: m.training for m in net.modules()}
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    try:
        net.eval()
        with torch.no_grad():
            net(*args)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes.items():
            m.train(training)
    return shapes


def apply_spectral_norm(
    net: nn.Module,
    variant: str = "sn",
    scale: float = 1.0,
    example_input=None,
    n_power_iterations: int = 1,
    gamma: str | None = None,
    gamma_on_bias: bool = True,
    embedding: bool = False,
) -> nn.Module:
    """Normalize every Linear / ConvNd / ConvTransposeNd layer of ``net`` with ``variant`` and scale ``s``,
    and with ``embedding`` every ``nn.Embedding`` too (a projection D's class embedding, docs/methods.md
    §7.8).

    ``example_input`` (a batch, or a tuple of forward arguments) is run through the net once to record
    each layer's input shape; ``sn-strict`` needs it. ``gamma``: ``None``; ``"same"`` multiplies every
    normalized weight by one trainable scalar ``net.sn_gamma`` (init 1); ``"diff"`` by one trainable scalar
    per layer (Miyato App. E, BSSN App. O). With ``gamma_on_bias`` (the default, as the official BSN code
    fjxmlzn/BSN does) each layer's bias is multiplied by its γ too, so the layer computes ``γ (W̄x + b)``;
    without it only the weights are (docs/methods.md §3.6). The gradient penalty of weight 10 that goes with
    the γ variants is the trainer's business, not added here. Returns ``net``."""
    SPECTRAL_VARIANTS.get(variant)
    kinds = SUPPORTED_LAYERS + (EMBEDDING_LAYERS if embedding else ())
    layers = [(name, m) for name, m in net.named_modules() if isinstance(m, kinds)]
    make_gamma = GAMMA_MODES.get(gamma)(net) if gamma is not None else (lambda: None)
    shapes = {} if example_input is None else record_input_shapes(net, example_input, [m for _, m in layers])
    for _, layer in layers:
        layer_gamma = make_gamma()
        spectral_norm(
            layer,
            variant,
            scale=scale,
            n_power_iterations=n_power_iterations,
            input_shape=shapes.get(layer),
            gamma=layer_gamma,
        )
        if layer_gamma is not None and gamma_on_bias and getattr(layer, "bias", None) is not None:
            parametrize.register_parametrization(layer, "bias", BiasTimesGamma(layer_gamma))
    return net


class BiasTimesGamma(nn.Module):
    """``b̄ = γ·b``, with the γ the layer's weight parametrization holds (the same parameter)."""

    def __init__(self, gamma: nn.Parameter):
        super().__init__()
        self.gamma = gamma

    def forward(self, bias: torch.Tensor) -> torch.Tensor:
        return self.gamma * bias


class OutputScale(nn.Module):
    """SN† of GraN: the output of a (spectrally normalized) network times a constant ``k``."""

    def __init__(self, net: nn.Module, k: float):
        super().__init__()
        self.net = net
        self.k = float(k)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.k * self.net(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"k={self.k}"


def _spectral_parametrizations_of(layer: nn.Module, tensor_name: str = "weight"):
    if parametrize.is_parametrized(layer, tensor_name):
        for parametrization in getattr(layer.parametrizations, tensor_name):
            if isinstance(parametrization, SpectralParametrization):
                yield parametrization


def spectral_parametrizations(net: nn.Module):
    """``(name, layer, parametrization)`` for every spectrally normalized weight in ``net``."""
    for name, layer in net.named_modules():
        for parametrization in _spectral_parametrizations_of(layer):
            yield name, layer, parametrization


@torch.no_grad()
def layer_sigmas(net: nn.Module, n_iter: int = 200) -> list[dict]:
    """Per normalized layer: exact reshaped and BSN sigmas of the raw weight, the operator sigma when the
    input shape is known (``n_iter`` power steps), the sigma currently divided by, ``s`` and ``γ``."""
    rows = []
    for name, layer, parametrization in spectral_parametrizations(net):
        weight = layer.parametrizations.weight.original
        row = {
            "name": name,
            "variant": parametrization.variant,
            "reshaped": float(reshaped_sigma(weight, parametrization.transposed)),
            "bsn": float(bsn_sigma(weight)),
            "used": float(parametrization.sigma(weight)),
            "scale": parametrization.scale,
            "gamma": None if parametrization.gamma is None else float(parametrization.gamma),
        }
        if parametrization.input_shape is not None:
            row["strict"] = float(_layer_operator_sigma(layer, weight, parametrization.input_shape, n_iter))
        rows.append(row)
    return rows


def _layer_operator_sigma(layer: nn.Module, weight: torch.Tensor, input_shape, n_iter: int) -> torch.Tensor:
    if weight.dim() == 2:
        return reshaped_sigma(weight)
    g = ConvGeometry.from_module(layer)
    return conv_operator_sigma(
        weight, input_shape, g.stride, g.padding, g.dilation, g.groups, g.transposed, g.output_padding, n_iter
    )
