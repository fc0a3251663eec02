"""Pieces shared by every architecture family: the generator base class, the (G, D) pair, latent
distributions, weight-initialization schemes and the checks on factory arguments (docs/methods.md §7.7)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from lipgan.errors import ConfigError
from lipgan.registry import Registry

ARCHS: Registry[Callable[..., GanPair]] = Registry("architecture")
Z_DISTRIBUTIONS: Registry[Callable[..., torch.Tensor]] = Registry("latent distribution")
INIT_SCHEMES: Registry[Callable[[nn.Module], None]] = Registry("init scheme")

WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)
NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d)

V = TypeVar("V")


def trainable_weight(layer: nn.Module) -> tuple[torch.Tensor, str]:
    """The weight the optimizer updates: `parametrizations.weight.original` for a spectrally normalized
    layer (kind "original"), else `weight` (kind "weight")."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original, "original"
    return layer.weight, "weight"


@contextlib.contextmanager
def eval_mode(*modules: nn.Module | None) -> Iterator[None]:
    """Put every module in eval mode (frozen power iterations, no dropout) and restore each submodule's
    own mode afterwards."""
    saved = [(m, m.training) for module in modules if module is not None for m in module.modules()]
    for module in modules:
        if module is not None:
            module.eval()
    try:
        yield
    finally:
        for m, training in saved:
            m.training = training


@Z_DISTRIBUTIONS.register("normal")
def sample_normal(shape: tuple[int, ...], generator, device, dtype) -> torch.Tensor:
    """z ~ N(0, I), the latent of the SNGAN, ResNet and DCGAN generators."""
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


@Z_DISTRIBUTIONS.register("uniform")
def sample_uniform(shape: tuple[int, ...], generator, device, dtype) -> torch.Tensor:
    """z ~ U(−1, 1), the latent of the BSSN MNIST generator (BSSN Table 4)."""
    unit = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return 2.0 * unit - 1.0


class Generator(nn.Module):
    """Base of every generator: maps a latent batch `[B, z_dim]` to samples `[B, *out_shape]`.

    `out_shape` is `(C, H, W)` for images and `(2,)` for points; samples lie in [−1, 1] for images.
    A class-conditional generator has `num_classes > 0` and is called `G(z, y)` with labels `y` int64 [B]
    in `0..num_classes−1`; its discriminator is called `D(x, y)` (docs/methods.md §7.8). An unconditional
    one has `num_classes == 0` and is called `G(z)`, its D `D(x)`.
    """

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], z_dist: str = "normal", num_classes: int = 0):
        super().__init__()
        Z_DISTRIBUTIONS.get(z_dist)
        self.z_dim = z_dim
        self.z_dist = z_dist
        self.out_shape = tuple(out_shape)
        self.num_classes = int(num_classes)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def sample_y(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Labels int64 `[n]` drawn uniformly from `0..num_classes−1` with `generator`."""
        if not self.conditional:
            raise ConfigError("an unconditional generator takes no class labels")
        return torch.randint(self.num_classes, (n,), generator=generator, device=device)

    def sample_z(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """A latent batch `[n, z_dim]` on `device` (default: the device of the parameters), in their dtype."""
        reference = next(self.parameters(), None)
        dtype = reference.dtype if reference is not None else torch.get_default_dtype()
        if device is None:
            device = reference.device if reference is not None else torch.device("cpu")
        return Z_DISTRIBUTIONS.get(self.z_dist)((n, self.z_dim), generator, device, dtype)

    def sample(
        self, n: int, generator: torch.Generator | None = None, device=None, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`n` samples `[n, *out_shape]` from fresh latents; a conditional generator draws uniform labels
        after z from the same `generator` unless `y` [n] is given."""
        z = self.sample_z(n, generator=generator, device=device)
        if not self.conditional:
            if y is not None:
                raise ConfigError("an unconditional generator takes no class labels")
            return self(z)
        if y is None:
            y = self.sample_y(n, generator=generator, device="cpu" if generator is not None else None)
        return self(z, y.to(z.device))


def class_count(G: nn.Module) -> int:
    """The number of classes a generator is conditioned on; 0 for an unconditional one, including a user's
    network that does not subclass `Generator`."""
    return int(getattr(G, "num_classes", 0) or 0)


@dataclass
class GanPair:
    """A generator and its discriminator; `D(x)` returns raw outputs `[B]`."""

    G: Generator
    D: nn.Module


def flatten_output(out: torch.Tensor) -> torch.Tensor:
    """`[B, 1]` or `[B, 1, 1, 1]` raw discriminator outputs as `[B]`."""
    return out.reshape(out.shape[0])


@INIT_SCHEMES.register("default")
def init_default(layer: nn.Module) -> None:
    """PyTorch's own initialization (uniform in ±1/sqrt(fan_in) for Conv/Linear), drawn afresh."""
    if isinstance(layer, WEIGHTED_LAYERS + NORM_LAYERS):
        layer.reset_parameters()


@INIT_SCHEMES.register("kaiming")
def init_kaiming(layer: nn.Module) -> None:
    """Kaiming normal weights, std sqrt(2 / fan_in), and zero biases on every Conv/Linear (GN App. D).

    fan_in follows PyTorch's convention (dim 1 times the kernel size), so for a transposed convolution
    it is out_channels · k².
    """
    if isinstance(layer, WEIGHTED_LAYERS):
        nn.init.kaiming_normal_(layer.weight, a=0.0, mode="fan_in", nonlinearity="relu")
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


@INIT_SCHEMES.register("normal002")
def init_normal002(layer: nn.Module) -> None:
    """DCGAN's initialization: Conv/Linear weights N(0, 0.02²), BN scales N(1, 0.02²), zero biases."""
    if isinstance(layer, WEIGHTED_LAYERS):
        nn.init.normal_(layer.weight, mean=0.0, std=0.02)
    elif isinstance(layer, NORM_LAYERS):
        nn.init.normal_(layer.weight, mean=1.0, std=0.02)
    else:
        return
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


@INIT_SCHEMES.register("xavier")
def init_xavier(layer: nn.Module) -> None:
    """Xavier-uniform weights as in Mimicry's SNGAN ResNets; biases keep PyTorch's initialization.

    The gain is the layer's `xavier_gain` attribute: sqrt(2) for the 3×3 convolutions inside residual
    blocks, 1 for the shortcuts, the first Linear, the last convolution and the output Linear.
    """
    if isinstance(layer, WEIGHTED_LAYERS):
        nn.init.xavier_uniform_(layer.weight, gain=getattr(layer, "xavier_gain", 1.0))


RESIDUAL_XAVIER_GAIN = math.sqrt(2.0)


def with_xavier_gain(layer: nn.Module, gain: float) -> nn.Module:
    """Tag `layer` with the gain the "xavier" scheme should use for it."""
    layer.xavier_gain = gain
    return layer


def init_weights(module: nn.Module, scheme: str) -> nn.Module:
    """Initialize every layer of `module` in place with the named scheme; returns `module`."""
    init_layer = INIT_SCHEMES.get(scheme)
    for layer in module.modules():
        init_layer(layer)
    return module


def finish_pair(G: Generator, D: nn.Module, init: str) -> GanPair:
    """Apply the init scheme to both networks and pair them."""
    INIT_SCHEMES.get(init)
    return GanPair(G=init_weights(G, init), D=init_weights(D, init))


def lookup_resolution(table: Mapping[int, V], resolution: int, arch: str) -> V:
    """The per-resolution spec of `arch`, or a ConfigError listing the supported resolutions."""
    if resolution not in table:
        valid = ", ".join(str(r) for r in sorted(table))
        raise ConfigError(f"architecture {arch!r} does not support resolution {resolution!r}; valid: {valid}")
    return table[resolution]


def check_positive(name: str, value: float) -> None:
    """A ConfigError unless `value` is a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def check_positive_int(name: str, value: int) -> None:
    """A ConfigError unless `value` is a positive integer (a channel count or a latent size)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def checked_widths(width: float, d_width: float | None) -> tuple[float, float]:
    """`(width, d_width)` after checking both are positive; D's width defaults to G's."""
    check_positive("width", width)
    d_width = width if d_width is None else d_width
    check_positive("d_width", d_width)
    return width, d_width


def scaled(base: int, width: float) -> int:
    """`base · width` channels or units, at least one."""
    return max(1, round(base * width))


def count_parameters(module: nn.Module) -> int:
    """The number of learnable scalars in `module`."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
