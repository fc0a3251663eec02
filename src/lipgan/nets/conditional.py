"""Class-conditional pieces and the SNGAN-projection ResNet, cGAN-PD (docs/methods.md §7.8).

G is conditioned by conditional batch norm: `BN(h)·(1 + γ_y) + β_y` with per-class embeddings γ, β. D is a
projection discriminator (Miyato & Koyama 2018, Eq. 3): `D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩` with φ the
pooled features, ψ the output layer and `embed` an `nn.Embedding` [num_classes, dim(φ)]. The projection
term is linear in φ, so D stays piecewise linear in x and GN's normalization is exact for it (GN Eq. 16
normalizes the class-wise D_y(x)). No spectral normalization inside: the trainer applies the constraint,
and `constraint.spectral_embedding` decides whether it reaches the projection embedding (§3, §7.8).

`cgan-pd` is Mimicry's `cgan_pd_32` (torch_mimicry/nets/cgan_pd/cgan_pd_32.py): the SNGAN ResNet of
`sngan-resnet` (plan "mimicry") with conditional batch norm in G's blocks, sum pooling and a projection
in D.
"""

from __future__ import annotations

import torch
from torch import nn

from lipgan.nets.base import (
    ARCHS,
    GanPair,
    check_positive_int,
    finish_pair,
    flatten_output,
    lookup_resolution,
)
from lipgan.nets.resnet import (
    MIMICRY_SPECS,
    POOLINGS,
    GBlock,
    ResNetDiscriminator,
    ResNetGenerator,
    ResNetSpec,
)

# Mimicry's cgan_pd_32; its cgan_pd_128 keeps ndf=128 as a default (a 0.46M D), so it is not offered here
CGAN_PD_SPECS = {32: MIMICRY_SPECS[32]}
CBN_GAIN_STD = 0.02  # Mimicry's ConditionalBatchNorm2d draws its scales from N(1, 0.02²)


def check_num_classes(num_classes: int) -> None:
    """A conditional net needs at least one class (0 means unconditional and is another arch)."""
    check_positive_int("num_classes", num_classes)


class ConditionalBatchNorm2d(nn.Module):
    """`BN(x)·(1 + γ_y) + β_y` with `BN` without affine parameters and γ, β embeddings [num_classes, C]
    (docs/methods.md §7.8). γ starts at N(0, 0.02²) and β at 0, i.e. scales N(1, 0.02²) as in Mimicry;
    BigGAN's init scheme redraws both (GNGAN-PyTorch `ConditionalBatchNorm2d`, which adds the same 1)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.gain.weight, mean=0.0, std=CBN_GAIN_STD)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scale = 1.0 + self.gain(y)[:, :, None, None]  # [B, C, 1, 1]
        return self.norm(x) * scale + self.bias(y)[:, :, None, None]


class ConditionalGBlock(GBlock):
    """A `GBlock` whose two batch norms are conditional on the class `y`."""

    def __init__(self, c_in: int, c_out: int, num_classes: int, upsample: str = "bilinear"):
        super().__init__(c_in, c_out, upsample)
        self.norm1 = ConditionalBatchNorm2d(c_in, num_classes)
        self.norm2 = ConditionalBatchNorm2d(c_out, num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.up(torch.relu(self.norm1(x, y))))  # [B, c_out, 2H, 2W]
        h = self.conv2(torch.relu(self.norm2(h, y)))
        return h + self.shortcut(self.up(x))


class ConditionalResNetGenerator(ResNetGenerator):
    """`ResNetGenerator` with `ConditionalGBlock`s; the last BN (before the output convolution) stays
    unconditional, as in Mimicry's cGAN-PD and GN's BigGAN. Called `G(z, y)`."""

    def make_block(self, c_in: int, c_out: int) -> nn.Module:
        return ConditionalGBlock(c_in, c_out, self.num_classes, self.spec.upsample)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.bottom(z)
        for block in self.blocks:
            h = block(h, y)
        return self.to_output(h)


def projection_embedding(num_classes: int, dim: int) -> nn.Embedding:
    """The class embedding of a projection D, Xavier-uniform (gain 1) as in Mimicry and GN's BigGAN."""
    embed = nn.Embedding(num_classes, dim)
    nn.init.xavier_uniform_(embed.weight)
    return embed


def project(h: torch.Tensor, y: torch.Tensor, fc: nn.Linear, embed: nn.Embedding) -> torch.Tensor:
    """`ψ(φ) + ⟨embed(y), φ⟩` `[B]` for features φ = `h` `[B, dim]` (Miyato & Koyama 2018, Eq. 3)."""
    return flatten_output(fc(h)) + (embed(y) * h).sum(dim=1)


class ProjectionResNetDiscriminator(ResNetDiscriminator):
    """`ResNetDiscriminator` plus a class embedding projected onto its pooled features; called `D(x, y)`."""

    def __init__(
        self, spec: ResNetSpec, channels: int, pooling: str, shortcut_after_relu: bool, num_classes: int
    ):
        super().__init__(spec, channels, pooling, shortcut_after_relu)
        self.num_classes = num_classes
        self.embed = projection_embedding(num_classes, spec.d_channels[-1])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return project(self.phi(x), y, self.fc, self.embed)  # [B]


def conditional_resnet_pair(
    spec: ResNetSpec, channels: int, z_dim: int, num_classes: int, pooling: str, init: str
) -> GanPair:
    """A conditional ResNet G and a projection ResNet D on `spec`, initialized with `init`."""
    POOLINGS.get(pooling)
    check_positive_int("channels", channels)
    check_positive_int("z_dim", z_dim)
    check_num_classes(num_classes)
    G = ConditionalResNetGenerator(spec, z_dim, channels, num_classes=num_classes)
    D = ProjectionResNetDiscriminator(spec, channels, pooling, False, num_classes)
    return finish_pair(G, D, init)


@ARCHS.register("cgan-pd")
def build_cgan_pd(
    *,
    resolution: int = 32,
    channels: int = 3,
    z_dim: int = 128,
    num_classes: int = 10,
    init: str = "xavier",
    pooling: str = "sum",
) -> GanPair:
    """Mimicry's cGAN-PD (SNGAN-projection ResNet) at 32²: the `sngan-resnet` plan "mimicry" with
    conditional batch norm in G and a projection D with global `pooling` (Mimicry sums)."""
    spec = lookup_resolution(CGAN_PD_SPECS, resolution, "cgan-pd")
    return conditional_resnet_pair(spec, channels, z_dim, num_classes, pooling, init)
