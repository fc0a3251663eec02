"""The MNIST networks of BSSN Tables 4–5 (docs/methods.md §7.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

RESOLUTIONS = {28: 7}  # image side -> side of the first generator feature map
SLOPE = 0.2
G_CHANNELS = (128, 64)
D_CHANNELS = (64, 128, 256)
D_BOTTOM = 4  # 28 -> 14 -> 7 -> 4 with k5 s2 p2


def deconv5(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    """k5 s2 deconvolution that exactly doubles the side (padding 2, output padding 1)."""
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1)


class BSSNMnistGenerator(Generator):
    """z ~ U(−1, 1)^z_dim → FC 7×7×128, LeakyReLU(0.2), BN → deconv 64, LeakyReLU(0.2), BN → deconv 1,
    sigmoid (BSSN Table 4; activation before BN, as tabulated).

    The output is 2·sigmoid(a) − 1 rather than sigmoid(a): every image in this toolkit lies in [−1, 1]
    (the data pipeline maps pixels there), while a sigmoid covers [0, 1]. The affine map keeps the paper's
    output layer and only changes the pixel scale, the same map that takes the paper's data to ours.
    """

    def __init__(self, z_dim: int, channels: int, bottom_width: int):
        side = 4 * bottom_width
        super().__init__(z_dim, (channels, side, side), z_dist="uniform")
        self.bottom_width = bottom_width
        self.fc = nn.Linear(z_dim, bottom_width * bottom_width * G_CHANNELS[0])
        self.fc_norm = nn.BatchNorm2d(G_CHANNELS[0])
        self.up = nn.Sequential(deconv5(G_CHANNELS[0], G_CHANNELS[1]), nn.LeakyReLU(SLOPE))
        self.up_norm = nn.BatchNorm2d(G_CHANNELS[1])
        self.to_image = deconv5(G_CHANNELS[1], channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], G_CHANNELS[0], self.bottom_width, self.bottom_width)  # [B, 128, 7, 7]
        h = self.fc_norm(F.leaky_relu(h, SLOPE))
        h = self.up_norm(self.up(h))  # [B, 64, 14, 14]
        return 2.0 * torch.sigmoid(self.to_image(h)) - 1.0  # [B, C, 28, 28]


class BSSNMnistDiscriminator(nn.Module):
    """Convs 64, 128, 256 (k5 s2, no bias) with LeakyReLU(0.2), then FC(1, no bias) (BSSN Table 5).

    Without any bias the network is positively homogeneous: D(a·x) = a·D(x) for a > 0.
    """

    def __init__(self, channels: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for c_out in D_CHANNELS:
            layers += [nn.Conv2d(c_in, c_out, 5, stride=2, padding=2, bias=False), nn.LeakyReLU(SLOPE)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(D_BOTTOM * D_BOTTOM * c_in, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).flatten(1)  # [B, 256 · 4 · 4]
        return flatten_output(self.fc(h))  # [B]


@ARCHS.register("bssn-mnist")
def build_bssn_mnist(
    *, resolution: int = 28, channels: int = 1, z_dim: int = 100, init: str = "default"
) -> GanPair:
    """BSSN's MNIST G and D at 28²."""
    bottom_width = lookup_resolution(RESOLUTIONS, resolution, "bssn-mnist")
    check_positive_int("channels", channels)
    check_positive_int("z_dim", z_dim)
    G = BSSNMnistGenerator(z_dim, channels, bottom_width)
    D = BSSNMnistDiscriminator(channels)
    return finish_pair(G, D, init)
