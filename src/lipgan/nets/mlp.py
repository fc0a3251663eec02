"""Two-hidden-layer MLPs for 2-D points, used for the value-surface plots (GN App. B.2;
docs/methods.md §7.5)."""

from __future__ import annotations

import torch
from torch import nn

from lipgan.nets.base import (
    ARCHS,
    GanPair,
    Generator,
    check_positive_int,
    checked_widths,
    finish_pair,
    flatten_output,
    scaled,
)
from lipgan.registry import Registry

HIDDEN_UNITS = 512
POINT_DIM = 2

ACTIVATIONS: Registry = Registry("activation")
ACTIVATIONS.register("relu")(lambda: nn.ReLU())
ACTIVATIONS.register("leaky_relu")(lambda: nn.LeakyReLU(0.2))


def mlp(d_in: int, hidden: int, d_out: int, activation: str, depth: int = 2) -> nn.Sequential:
    """d_in → hidden (×depth) → d_out with the named piecewise-linear activation after each hidden layer."""
    make_activation = ACTIVATIONS.get(activation)
    layers: list[nn.Module] = []
    for d_prev in [d_in] + [hidden] * (depth - 1):
        layers += [nn.Linear(d_prev, hidden), make_activation()]
    return nn.Sequential(*layers, nn.Linear(hidden, d_out))


class MLPGenerator(Generator):
    """z ∈ R^z_dim ~ N(0, I) → 2-D point; no output squashing: mixture points are not confined to [−1, 1]."""

    def __init__(self, z_dim: int, hidden: int, depth: int = 2):
        super().__init__(z_dim, (POINT_DIM,), z_dist="normal")
        self.net = mlp(z_dim, hidden, POINT_DIM, "relu", depth)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # [B, 2]


class MLPDiscriminator(nn.Module):
    """2-D point → scalar, piecewise linear."""

    def __init__(self, hidden: int, activation: str):
        super().__init__()
        self.net = mlp(POINT_DIM, hidden, 1, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return flatten_output(self.net(x))  # [B]


@ARCHS.register("mlp2d")
def build_mlp2d(
    *,
    resolution: int | None = None,
    channels: int | None = None,
    z_dim: int = 2,
    init: str = "default",
    width: float = 1.0,
    d_width: float | None = None,
    activation: str = "relu",
    g_depth: int = 2,
) -> GanPair:
    """MLPs for 2-D mixtures: G has `g_depth` hidden layers (the paper's 2 by default) of round(512·width)
    units, D two of round(512·d_width) (default: the same as G). `resolution` and `channels` are accepted
    so that every architecture takes the same keywords, and ignored: points have neither."""
    check_positive_int("z_dim", z_dim)
    check_positive_int("g_depth", g_depth)
    width, d_width = checked_widths(width, d_width)
    ACTIVATIONS.get(activation)
    G = MLPGenerator(z_dim, scaled(HIDDEN_UNITS, width), g_depth)
    return finish_pair(G, MLPDiscriminator(scaled(HIDDEN_UNITS, d_width), activation), init)


class ConditionalMLPGenerator(Generator):
    """`G(z, y)`: the MLP generator fed `[z, onehot(y)]` (docs/methods.md §7.8)."""

    def __init__(self, z_dim: int, hidden: int, num_classes: int, depth: int = 2):
        super().__init__(z_dim, (POINT_DIM,), z_dist="normal", num_classes=num_classes)
        self.net = mlp(z_dim + num_classes, hidden, POINT_DIM, "relu", depth)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(y, self.num_classes).to(z.dtype)  # [B, C]
        return self.net(torch.cat([z, onehot], dim=1))  # [B, 2]


class ProjectionMLPDiscriminator(nn.Module):
    """`D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩` with φ the MLP's hidden layers and ψ its last linear layer
    (Miyato & Koyama 2018's projection; docs/methods.md §7.8). Piecewise linear in x for every label."""

    def __init__(self, hidden: int, activation: str, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        layers = list(mlp(POINT_DIM, hidden, 1, activation))
        self.phi = nn.Sequential(*layers[:-1])
        self.psi = layers[-1]
        self.embed = nn.Embedding(num_classes, hidden)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        features = self.phi(x)  # [B, hidden]
        return flatten_output(self.psi(features)) + (self.embed(y) * features).sum(dim=1)  # [B]


@ARCHS.register("mlp2d-cond")
def build_mlp2d_cond(
    *,
    resolution: int | None = None,
    channels: int | None = None,
    num_classes: int = 8,
    z_dim: int = 2,
    init: str = "default",
    width: float = 1.0,
    d_width: float | None = None,
    activation: str = "relu",
) -> GanPair:
    """Class-conditional MLPs for 2-D mixtures, one class per mixture component: the `mlp2d` pair with a
    one-hot label input in G and a projection D. Small and fast; the tests' conditional network."""
    check_positive_int("z_dim", z_dim)
    check_positive_int("num_classes", num_classes)
    width, d_width = checked_widths(width, d_width)
    ACTIVATIONS.get(activation)
    G = ConditionalMLPGenerator(z_dim, scaled(HIDDEN_UNITS, width), num_classes)
    D = ProjectionMLPDiscriminator(scaled(HIDDEN_UNITS, d_width), activation, num_classes)
    return finish_pair(G, D, init)
