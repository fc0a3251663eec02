"""The class-conditional digits nets (`digits-cnn-cond`; docs/methods.md §7.6, §7.8): `digits-cnn` with
a class embedding concatenated to z in G and a projection in D. Not from the papers: the CPU stand-in for
their conditional experiments, the size of `digits-cnn` plus the two embeddings."""

from __future__ import annotations

import torch
from torch import nn

from lipgan.nets.base import ARCHS, GanPair, check_positive_int, checked_widths, finish_pair, scaled
from lipgan.nets.conditional import check_num_classes, project, projection_embedding
from lipgan.nets.digits import (
    D_BASE_CHANNELS,
    G_BASE_CHANNELS,
    STAGES,
    DigitsDiscriminator,
    DigitsGenerator,
    lookup_resolution,
)

Y_DIM = 16  # width of G's class embedding, half the default z


class ConditionalDigitsGenerator(DigitsGenerator):
    """`DigitsGenerator` on `[z, embed(y)]`: the class enters through the first linear layer, which
    reads `z_dim + y_dim` inputs; called `G(z, y)`."""

    def __init__(
        self, z_dim: int, channels: int, stages: int, base: int, upsample: str, num_classes: int, y_dim: int
    ):
        super().__init__(z_dim + y_dim, channels, stages, base, upsample)
        self.z_dim, self.num_classes = z_dim, num_classes  # the latent alone; the embedding is ours
        self.embed = nn.Embedding(num_classes, y_dim)
        nn.init.normal_(self.embed.weight)  # unit-variance codes, on the scale of z ~ N(0, I)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.cat([z, self.embed(y)], dim=1))  # [B, C, H, W]


class ProjectionDigitsDiscriminator(DigitsDiscriminator):
    """`DigitsDiscriminator` plus ⟨embed(y), φ(x)⟩ on its flattened 4×4 features; called `D(x, y)`."""

    def __init__(self, channels: int, stages: int, base: int, num_classes: int):
        super().__init__(channels, stages, base)
        self.num_classes = num_classes
        self.embed = projection_embedding(num_classes, self.fc.in_features)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return project(self.phi(x), y, self.fc, self.embed)  # [B]


@ARCHS.register("digits-cnn-cond")
def build_digits_cnn_cond(
    *,
    resolution: int = 16,
    channels: int = 1,
    z_dim: int = 32,
    num_classes: int = 10,
    y_dim: int = Y_DIM,
    init: str = "default",
    width: float = 1.0,
    d_width: float | None = None,
    upsample: str = "nearest",
) -> GanPair:
    """Conditional digits nets at 16² or 32²: the options of `digits-cnn` plus `num_classes` and the
    width `y_dim` of G's class embedding."""
    stages = lookup_resolution(STAGES, resolution, "digits-cnn-cond")
    check_positive_int("channels", channels)
    check_positive_int("z_dim", z_dim)
    check_positive_int("y_dim", y_dim)
    check_num_classes(num_classes)
    width, d_width = checked_widths(width, d_width)
    G = ConditionalDigitsGenerator(
        z_dim, channels, stages, scaled(G_BASE_CHANNELS, width), upsample, num_classes, y_dim
    )
    D = ProjectionDigitsDiscriminator(channels, stages, scaled(D_BASE_CHANNELS, d_width), num_classes)
    return finish_pair(G, D, init)
