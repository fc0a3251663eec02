"""The DCGAN of LipReg App. B (after Radford et al. 2016) at 32² and 64² (docs/methods.md §7.3)."""

from __future__ import annotations

import torch
from torch import nn

from lipgan.nets.base import (
    ARCHS,
    GanPair,
    Generator,
    check_positive_int,
    finish_pair,
    flatten_output,
    lookup_resolution,
)
from lipgan.registry import Registry

# image side -> hidden widths of G (first deconvolution first); D uses them in reverse order
WIDTHS = {32: (256, 128, 64), 64: (512, 256, 128, 64)}
D_SLOPE = 0.2

D_NORMS: Registry = Registry("discriminator norm")


@D_NORMS.register("none")
def no_norm(channels: int) -> nn.Module:
    """No normalization: D stays piecewise linear (the SN runs of LipReg App. B)."""
    return nn.Identity()


@D_NORMS.register("bn")
def batch_norm(channels: int) -> nn.Module:
    """BatchNorm after each hidden convolution (LipReg's gradient-penalty baseline, App. C)."""
    return nn.BatchNorm2d(channels)


class DCGANGenerator(Generator):
    """z as 1×1×z_dim → deconv k4 s1 to 4×4, then deconvs k4 s2 p1, each with BN and ReLU → tanh.

    Hidden deconvolutions have no bias, since the BN after them removes it (as in DCGAN).
    """

    def __init__(self, z_dim: int, channels: int, widths: tuple[int, ...]):
        side = 4 * 2 ** len(widths)
        super().__init__(z_dim, (channels, side, side), z_dist="normal")
        layers: list[nn.Module] = []
        c_in = z_dim
        for index, c_out in enumerate(widths):
            stride, padding = (1, 0) if index == 0 else (2, 1)
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=stride, padding=padding, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
            c_in = c_out
        layers += [nn.ConvTranspose2d(c_in, channels, 4, stride=2, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))  # [B, C, H, W]


class DCGANDiscriminator(nn.Module):
    """Convs k4 s2 p1 (widths reversed from G) with optional norm and LeakyReLU(0.2), then a k4 conv
    to 1 on the final 4×4 map."""

    def __init__(self, channels: int, widths: tuple[int, ...], d_norm: str):
        super().__init__()
        make_norm = D_NORMS.get(d_norm)
        layers: list[nn.Module] = []
        c_in = channels
        for c_out in reversed(widths):
            has_bias = d_norm == "none"
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=has_bias),
                make_norm(c_out),
                nn.LeakyReLU(D_SLOPE),
            ]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, 1, 4, stride=1, padding=0))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return flatten_output(self.net(x))  # [B, 1, 1, 1] -> [B]


@ARCHS.register("dcgan")
def build_dcgan(
    *,
    resolution: int = 64,
    channels: int = 3,
    z_dim: int = 100,
    init: str = "normal002",
    d_norm: str = "none",
) -> GanPair:
    """LipReg's DCGAN at 32² or 64²; `d_norm` "bn" gives its WGAN-GP baseline D (LipReg App. C)."""
    widths = lookup_resolution(WIDTHS, resolution, "dcgan")
    D_NORMS.get(d_norm)
    check_positive_int("channels", channels)
    check_positive_int("z_dim", z_dim)
    G = DCGANGenerator(z_dim, channels, widths)
    D = DCGANDiscriminator(channels, widths, d_norm)
    return finish_pair(G, D, init)
