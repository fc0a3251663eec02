"""The SNGAN "standard CNN" (Miyato et al. 2018), as tabulated in BSSN Tables 2–3 (docs/methods.md §7.1)."""

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

# image side -> M_g, the side of the first (generator) and last (discriminator) feature map
BOTTOM_WIDTHS = {32: 4, 48: 6, 64: 8}
G_CHANNELS = (512, 256, 128, 64)
D_LAYERS = ((64, 3, 1), (64, 4, 2), (128, 3, 1), (128, 4, 2), (256, 3, 1), (256, 4, 2), (512, 3, 1))
D_SLOPE = 0.1


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Deconvolution (k4 s2 p1, doubles the side), BN, ReLU (BSSN Table 2)."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class SNGANCNNGenerator(Generator):
    """z ∈ R^z_dim → FC to M_g×M_g×512, BN, ReLU → deconvs 256, 128, 64 → conv 3×3 to `channels`, tanh."""

    def __init__(self, z_dim: int, channels: int, bottom_width: int):
        super().__init__(z_dim, (channels, 8 * bottom_width, 8 * bottom_width), z_dist="normal")
        self.bottom_width = bottom_width
        self.fc = nn.Linear(z_dim, bottom_width * bottom_width * G_CHANNELS[0])
        self.fc_norm = nn.BatchNorm2d(G_CHANNELS[0])
        self.ups = nn.Sequential(*(up_block(c_in, c_out) for c_in, c_out in zip(G_CHANNELS, G_CHANNELS[1:])))
        self.to_image = nn.Conv2d(G_CHANNELS[-1], channels, 3, stride=1, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], G_CHANNELS[0], self.bottom_width, self.bottom_width)  # [B, 512, M, M]
        h = self.ups(torch.relu(self.fc_norm(h)))  # [B, 64, 8M, 8M]
        return torch.tanh(self.to_image(h))  # [B, C, 8M, 8M]


class SNGANCNNDiscriminator(nn.Module):
    """Seven convolutions (k3 s1 p1 / k4 s2 p1), each with LeakyReLU(0.1), then FC(1) (BSSN Table 3)."""

    def __init__(self, channels: int, bottom_width: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for c_out, kernel, stride in D_LAYERS:
            layers += [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1), nn.LeakyReLU(D_SLOPE)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(bottom_width * bottom_width * c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).flatten(1)  # [B, 512 · M · M]
        return flatten_output(self.fc(h))  # [B]


@ARCHS.register("sngan-cnn")
def build_sngan_cnn(
    *, resolution: int = 32, channels: int = 3, z_dim: int = 128, init: str = "default"
) -> GanPair:
    """SNGAN standard CNN at 32², 48² or 64² (M_g = resolution / 8); biases everywhere, as in Chainer."""
    bottom_width = lookup_resolution(BOTTOM_WIDTHS, resolution, "sngan-cnn")
    check_positive_int("channels", channels)
    check_positive_int("z_dim", z_dim)
    G = SNGANCNNGenerator(z_dim, channels, bottom_width)
    D = SNGANCNNDiscriminator(channels, bottom_width)
    return finish_pair(G, D, init)
