"""The SNGAN ResNets as implemented in Mimicry, used by GraN (GraN App. B, Figs. 5–7; docs/methods.md §7.2),
and the channel plans of the official GN code (basiclab/GNGAN-PyTorch `models/resnet.py`), the only one
with a 256² net (GN Table 5).

Differences from Mimicry, on purpose:
- Mimicry's `DBlock` applies an in-place ReLU to its input before the residual branch, so its shortcut
  actually receives relu(x). SNGAN's Chainer code, and GraN's Fig. 7, feed the shortcut the block input
  x itself; that is the default here. `shortcut_after_relu=True` reproduces Mimicry's behaviour.
- No spectral normalization inside: the trainer applies the configured constraint.

The GN code's plans (`plan="gngan"`) up-sample by nearest neighbour and widen each DBlock's hidden
convolution to the block's output width; parameter counts match its modules exactly (tests/test_nets.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lipgan.errors import ConfigError
from lipgan.nets.base import (
    ARCHS,
    RESIDUAL_XAVIER_GAIN,
    GanPair,
    Generator,
    check_positive_int,
    finish_pair,
    flatten_output,
    lookup_resolution,
    with_xavier_gain,
)
from lipgan.registry import Registry

POOLINGS: Registry = Registry("pooling")
UPSAMPLINGS: Registry = Registry("ResNet upsampling")


@POOLINGS.register("sum")
def global_sum_pool(h: torch.Tensor) -> torch.Tensor:
    """Global spatial sum `[B, C, H, W] -> [B, C]` (SNGAN; makes the 32² bound 1024, GraN App. D)."""
    return h.sum(dim=(2, 3))


@POOLINGS.register("avg")
def global_avg_pool(h: torch.Tensor) -> torch.Tensor:
    """Global spatial mean `[B, C, H, W] -> [B, C]` (GN, GraN and PGN models)."""
    return h.mean(dim=(2, 3))


@UPSAMPLINGS.register("bilinear")
def upsample2x(h: torch.Tensor) -> torch.Tensor:
    """Bilinear ×2 upsampling without corner alignment, as in Mimicry's GBlock."""
    return F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)


@UPSAMPLINGS.register("nearest")
def upsample2x_nearest(h: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour ×2 upsampling, the `nn.Upsample(scale_factor=2)` of the GN and BigGAN codes."""
    return F.interpolate(h, scale_factor=2, mode="nearest")


@dataclass(frozen=True)
class ResNetSpec:
    """Channel plan of one resolution: G starts at `g_bottom`² with `g_channels[0]` channels and each
    up-block maps `g_channels[i] -> g_channels[i + 1]`; D's blocks output `d_channels[i]` and halve the
    side where `d_down[i]` (`d_down[0]` is always True: the input block always halves the side).

    `upsample` names G's ×2 resize in `UPSAMPLINGS` (Mimicry: bilinear; GN's code: nearest). `d_hidden` is
    the width of a DBlock's first convolution: "in", the block's input width (Mimicry), or "out", its
    output width (GN's code); they differ only in blocks that change the width."""

    g_bottom: int
    g_channels: tuple[int, ...]
    d_channels: tuple[int, ...]
    d_down: tuple[bool, ...]
    upsample: str = "bilinear"
    d_hidden: str = "in"

    @property
    def side(self) -> int:
        """The side of G's images (and of D's inputs)."""
        return self.g_bottom * 2 ** (len(self.g_channels) - 1)


# Mimicry's sngan_32 / sngan_48 / sngan_128 (ngf, ndf and the `>>` shifts written out).
MIMICRY_SPECS = {
    32: ResNetSpec(4, (256, 256, 256, 256), (128, 128, 128, 128), (True, True, False, False)),
    48: ResNetSpec(6, (512, 256, 128, 64), (64, 128, 256, 512, 1024), (True, True, True, True, False)),
    128: ResNetSpec(
        4,
        (1024, 1024, 512, 256, 128, 64),
        (64, 128, 256, 512, 1024, 1024),
        (True, True, True, True, True, False),
    ),
}
RESNET_SPECS = MIMICRY_SPECS  # the default plan


def gngan_spec(g_bottom: int, g_channels: tuple, d_channels: tuple, d_down: tuple) -> ResNetSpec:
    return ResNetSpec(g_bottom, g_channels, d_channels, d_down, upsample="nearest", d_hidden="out")


# GN's ResGenerator{32,48,128,256} / ResDiscriminator{32,48,128,256} (GNGAN-PyTorch models/resnet.py).
# Against Mimicry: 48² has one D block fewer; 128² has the same widths but wider hidden convolutions in D
# (38.4M parameters instead of 29.2M).
GNGAN_SPECS = {
    32: gngan_spec(4, (256, 256, 256, 256), (128, 128, 128, 128), (True, True, False, False)),
    48: gngan_spec(6, (512, 256, 128, 64), (64, 128, 256, 512), (True, True, True, True)),
    128: gngan_spec(
        4, (1024, 1024, 512, 256, 128, 64), (64, 128, 256, 512, 1024, 1024), (True,) * 5 + (False,)
    ),
    256: gngan_spec(
        4, (1024, 1024, 512, 512, 256, 128, 64), (64, 128, 256, 512, 512, 1024, 1024), (True,) * 6 + (False,)
    ),
}
RESNET_PLANS = {"mimicry": MIMICRY_SPECS, "gngan": GNGAN_SPECS}


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """A 3×3 residual-branch convolution (Xavier gain sqrt(2) in Mimicry)."""
    return with_xavier_gain(nn.Conv2d(c_in, c_out, 3, stride=1, padding=1), RESIDUAL_XAVIER_GAIN)


def conv1x1(c_in: int, c_out: int) -> nn.Conv2d:
    """A 1×1 shortcut convolution (Xavier gain 1 in Mimicry)."""
    return with_xavier_gain(nn.Conv2d(c_in, c_out, 1, stride=1, padding=0), 1.0)


class GBlock(nn.Module):
    """Up2X_GBlock (GraN Fig. 7d): BN-ReLU-up-conv3-BN-ReLU-conv3, plus shortcut up-conv1; `upsample`
    names the ×2 resize in `UPSAMPLINGS`."""

    def __init__(self, c_in: int, c_out: int, upsample: str = "bilinear"):
        super().__init__()
        self.up = UPSAMPLINGS.get(upsample)
        self.norm1 = nn.BatchNorm2d(c_in)
        self.conv1 = conv3x3(c_in, c_out)
        self.norm2 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.shortcut = conv1x1(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.up(torch.relu(self.norm1(x))))  # [B, c_out, 2H, 2W]
        h = self.conv2(torch.relu(self.norm2(h)))
        return h + self.shortcut(self.up(x))


class DBlockOptimized(nn.Module):
    """Input_DBlock (GraN Fig. 7a): conv3-ReLU-conv3-avgpool, plus shortcut avgpool-conv1."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.shortcut = conv1x1(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.conv2(torch.relu(self.conv1(x))), 2)  # [B, c_out, H/2, W/2]
        return h + self.shortcut(F.avg_pool2d(x, 2))


class DBlock(nn.Module):
    """DBlock / Down2X_DBlock (GraN Fig. 7b–c): ReLU-conv3-ReLU-conv3[-avgpool], plus a shortcut that
    is conv1[-avgpool] when the channels change or the side halves, the identity otherwise. The hidden
    width is `hidden`: by default `c_in`, as in Mimicry (GN's code uses `c_out`)."""

    def __init__(
        self, c_in: int, c_out: int, downsample: bool, shortcut_after_relu: bool, hidden: int | None = None
    ):
        super().__init__()
        hidden = c_in if hidden is None else hidden
        self.downsample = downsample
        self.shortcut_after_relu = shortcut_after_relu
        self.conv1 = conv3x3(c_in, hidden)
        self.conv2 = conv3x3(hidden, c_out)
        self.shortcut = conv1x1(c_in, c_out) if (downsample or c_in != c_out) else nn.Identity()

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(h, 2) if self.downsample else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = torch.relu(x)
        h = self.pool(self.conv2(torch.relu(self.conv1(activated))))
        skip_input = activated if self.shortcut_after_relu else x
        return h + self.pool(self.shortcut(skip_input))


class ResNetGenerator(Generator):
    """Linear to g_bottom²·C0, up-blocks, then BN-ReLU-conv3-tanh (GraN Fig. 6)."""

    def __init__(self, spec: ResNetSpec, z_dim: int, channels: int, num_classes: int = 0):
        super().__init__(z_dim, (channels, spec.side, spec.side), z_dist="normal", num_classes=num_classes)
        self.spec = spec
        self.fc = with_xavier_gain(nn.Linear(z_dim, spec.g_bottom**2 * spec.g_channels[0]), 1.0)
        pairs = zip(spec.g_channels, spec.g_channels[1:])
        self.blocks = nn.Sequential(*(self.make_block(c_in, c_out) for c_in, c_out in pairs))
        self.out_norm = nn.BatchNorm2d(spec.g_channels[-1])
        self.to_image = with_xavier_gain(
            nn.Conv2d(spec.g_channels[-1], channels, 3, stride=1, padding=1), 1.0
        )

    def make_block(self, c_in: int, c_out: int) -> nn.Module:
        return GBlock(c_in, c_out, self.spec.upsample)

    def bottom(self, z: torch.Tensor) -> torch.Tensor:
        side = self.spec.g_bottom
        return self.fc(z).view(z.shape[0], self.spec.g_channels[0], side, side)  # [B, C0, s, s]

    def to_output(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_image(torch.relu(self.out_norm(h))))  # [B, C, H, W]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_output(self.blocks(self.bottom(z)))


class ResNetDiscriminator(nn.Module):
    """Input_DBlock, DBlocks, ReLU, global pooling, Linear(1) (GraN Fig. 5)."""

    def __init__(self, spec: ResNetSpec, channels: int, pooling: str, shortcut_after_relu: bool):
        super().__init__()
        self.pool = POOLINGS.get(pooling)
        blocks: list[nn.Module] = [DBlockOptimized(channels, spec.d_channels[0])]
        for c_in, c_out, down in zip(spec.d_channels, spec.d_channels[1:], spec.d_down[1:]):
            hidden = c_out if spec.d_hidden == "out" else c_in
            blocks.append(DBlock(c_in, c_out, down, shortcut_after_relu, hidden))
        self.blocks = nn.Sequential(*blocks)
        self.fc = with_xavier_gain(nn.Linear(spec.d_channels[-1], 1), 1.0)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): the pooled last feature map `[B, C_last]` that the output layer (and a projection) reads."""
        return self.pool(torch.relu(self.blocks(x)))  # [B, C_last]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return flatten_output(self.fc(self.phi(x)))  # [B]


def resnet_spec(plan: str, resolution: int, arch: str) -> ResNetSpec:
    """The spec of `plan` ("mimicry" or "gngan") at `resolution`, or a ConfigError listing the valid ones."""
    if plan not in RESNET_PLANS:
        raise ConfigError(f"{arch} has no plan {plan!r}; valid: {', '.join(RESNET_PLANS)}")
    return lookup_resolution(RESNET_PLANS[plan], resolution, f"{arch} (plan {plan})")


@ARCHS.register("sngan-resnet")
def build_sngan_resnet(
    *,
    resolution: int = 32,
    channels: int = 3,
    z_dim: int = 128,
    init: str = "xavier",
    pooling: str = "avg",
    shortcut_after_relu: bool = False,
    plan: str = "mimicry",
) -> GanPair:
    """SNGAN ResNet of Mimicry at 32², 48² or 128² (`plan` "mimicry"), or of the GN code at 32², 48², 128²
    or 256² (`plan` "gngan"; docs/methods.md §7.2). `pooling` is "sum" (SNGAN) or "avg" (the other methods,
    GraN Fig. 5 caption); "xavier" reproduces Mimicry's initialization, "kaiming" GN's."""
    spec = resnet_spec(plan, resolution, "sngan-resnet")
    POOLINGS.get(pooling)
    check_positive_int("channels", channels)
    check_positive_int("z_dim", z_dim)
    G = ResNetGenerator(spec, z_dim, channels)
    D = ResNetDiscriminator(spec, channels, pooling, shortcut_after_relu)
    return finish_pair(G, D, init)
