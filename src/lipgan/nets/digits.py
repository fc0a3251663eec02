"""Small DCGAN-style networks for the embedded scikit-learn digits at 16² or 32², sized to train on a
couple of CPU cores in minutes. Not from the papers: the CPU stand-in for their image experiments."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lipgan.nets.base import (
    ARCHS,
    GanPair,
    Generator,
    check_positive_int,
    checked_widths,
    finish_pair,
    flatten_output,
    lookup_resolution,
    scaled,
)
from lipgan.registry import Registry

BOTTOM_WIDTH = 4
# image side -> number of ×2 stages between the 4×4 map and the image
STAGES = {16: 2, 32: 3}
G_BASE_CHANNELS = 64
D_BASE_CHANNELS = 32
D_SLOPE = 0.2


# ×2 upsampling stages of the generator: (c_in, c_out, bias) -> layers
UPSAMPLERS: Registry = Registry("upsample")


@UPSAMPLERS.register("deconv")
def deconv_block(c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
    """A transposed conv k4 s2 p1 (DCGAN)."""
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)]


# Row k of the 4-tap transposed-conv kernel sums the 3×3 taps that reach it (see `NearestUpConv2d`).
NEAREST_TO_DECONV_TAPS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


# PHASE_TAPS[a, u, k]: in phase a of the ×2 upsampled axis (output pixel 2j + a), input pixel j + u − 1 meets
# the 3×3 conv's tap k: phase 0 sees (j−1, j, j) through taps (0, 1, 2), phase 1 sees (j, j, j+1).
PHASE_TAPS = torch.tensor(
    [[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]
)
# up to this many output channels (an image's), the layer runs as a conv to 4·out phase channels
PHASE_FORM_MAX_CHANNELS = 4


class NearestUpConv2d(nn.Conv2d):
    """Nearest-neighbour ×2 then a conv k3 p1, computed without building the 4× larger upsampled map.

    Per axis, output pixel 2j sees inputs (j−1, j, j) through taps (w₀, w₁, w₂) and pixel 2j+1 sees
    (j, j, j+1), so the pair equals a stride-2 transposed conv with kernel (w₂, w₁+w₂, w₀+w₁, w₀). The layer
    keeps Conv2d's [out, in, 3, 3] weight (same parameters, init and count) and never builds the 4× larger
    upsampled map: on 2 CPU cores the 16² generator's forward + backward went from 16.5 to 7.4 ms per batch
    of 64 against `nn.Upsample` + `nn.Conv2d`, and the default run from 26 to 39–52 steps/s.

    With few output channels (`PHASE_FORM_MAX_CHANNELS`, the last layer's image channels) the same map runs
    as a conv k3 p1 on the input to 4·out channels, one per output phase (kernels merged by `PHASE_TAPS`),
    then `pixel_shuffle`: the CPU's transposed conv to one channel was 2× slower in the forward (measured in
    docs/performance.md, "The default run"); with many output channels the 2.25× more products of the 3×3
    phase kernels cost more than that.
    """

    def __init__(self, c_in: int, c_out: int, bias: bool):
        super().__init__(c_in, c_out, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.out_channels <= PHASE_FORM_MAX_CHANNELS:
            return self._phase_form(x)
        taps = NEAREST_TO_DECONV_TAPS.to(self.weight)  # [4, 3]
        kernel = torch.einsum("pk,oikl,ql->iopq", taps, self.weight, taps)  # [in, out, 4, 4]
        return F.conv_transpose2d(x, kernel, self.bias, stride=2, padding=1)  # [B, out, 2H, 2W]

    def _phase_form(self, x: torch.Tensor) -> torch.Tensor:
        taps = PHASE_TAPS.to(self.weight)  # [2, 3, 3]
        kernel = torch.einsum("auk,oikl,bvl->oabiuv", taps, self.weight, taps)  # [out, 2, 2, in, 3, 3]
        kernel = kernel.reshape(self.out_channels * 4, self.in_channels, 3, 3)
        bias = self.bias.repeat_interleave(4) if self.bias is not None else None  # [out · 4]
        return F.pixel_shuffle(F.conv2d(x, kernel, bias, padding=1), 2)  # [B, out, 2H, 2W]


class SpaceToDepthConv2d(nn.Conv2d):
    """A conv k4 s2 p1, computed as zero padding by 1, a 2×2 space-to-depth (`pixel_unshuffle`) and a conv
    k2 s1 over the 4·c_in phase channels, whose kernel is the same weight with its taps regrouped by phase.

    Input pixel 2i+u of the padded map meets tap u of output pixel i; with u = 2·(u // 2) + u % 2, phase
    u % 2 of cell i + u // 2 holds it. So the pair computes the same sums as `nn.Conv2d(c_in, c_out, 4, 2,
    1)`, with its [out, in, 4, 4] weight (same parameters, init, stride and padding attributes, so spectral
    normalization reads the same geometry). Its worth is the input gradient, which the gradient
    normalizations differentiate again: with one input channel (the digits' first layer) that gradient is a
    transposed conv to one channel, a slow CPU path: forward + backward of the layer at batch 128 took 2.1 ms
    against 0.86 ms this way on one core (docs/performance.md, "The default run").
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_out, c_in = self.weight.shape[:2]
        # [out, in, 4, 4] as [out, in, cell_u, phase_u, cell_v, phase_v] -> [out, in·phase_u·phase_v, 2, 2]
        phases = self.weight.view(c_out, c_in, 2, 2, 2, 2).permute(0, 1, 3, 5, 2, 4)
        kernel = phases.reshape(c_out, c_in * 4, 2, 2)
        cells = F.pixel_unshuffle(F.pad(x, (1, 1, 1, 1)), 2)  # [B, 4·in, H/2 + 1, W/2 + 1]
        return F.conv2d(cells, kernel, self.bias)  # [B, out, H/2, W/2]


@UPSAMPLERS.register("nearest")
def nearest_conv_block(c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
    """Nearest-neighbour ×2 then a conv k3 p1, the resize-convolution of Odena et al. 2016 ("Deconvolution
    and checkerboard artifacts"); on the digits it gave a much lower `digits_fid` than deconv (CHANGELOG)."""
    return [NearestUpConv2d(c_in, c_out, bias)]


class DigitsGenerator(Generator):
    """z → FC to 4×4×(g·2^(n−1)), BN, ReLU → ×2 stages (an `UPSAMPLERS` block) halving the channels, each
    with BN and ReLU → a last ×2 stage to `channels`, tanh (n = number of ×2 stages)."""

    def __init__(self, z_dim: int, channels: int, stages: int, base: int, upsample: str):
        side = BOTTOM_WIDTH * 2**stages
        super().__init__(z_dim, (channels, side, side), z_dist="normal")
        widths = [base * 2 ** (stages - 1 - i) for i in range(stages)]  # e.g. [128, 64] at 16²
        self.first_channels = widths[0]
        make_up = UPSAMPLERS.get(upsample)
        self.fc = nn.Linear(z_dim, BOTTOM_WIDTH * BOTTOM_WIDTH * widths[0], bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [*make_up(c_in, c_out, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [*make_up(widths[-1], channels, bias=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.first_channels, BOTTOM_WIDTH, BOTTOM_WIDTH)  # [B, C0, 4, 4]
        return self.net(h)  # [B, C, H, W]


class DigitsDiscriminator(nn.Module):
    """Convs k4 s2 p1 doubling the channels (d, 2d, ...) with biases and LeakyReLU(0.2) down to 4×4,
    then Linear to 1. No normalization layer, so D is piecewise linear. The first conv is computed through
    space-to-depth (`SpaceToDepthConv2d`, the same map)."""

    def __init__(self, channels: int, stages: int, base: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for stage in range(stages):
            c_out = base * 2**stage
            # the first layer (c_in = image channels) as the same conv through space-to-depth
            conv = SpaceToDepthConv2d(c_in, c_out) if stage == 0 else nn.Conv2d(c_in, c_out, 4, 2, 1)
            layers += [conv, nn.LeakyReLU(D_SLOPE)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(BOTTOM_WIDTH * BOTTOM_WIDTH * c_in, 1)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): the flattened 4×4 feature map `[B, C_last · 4 · 4]` that the output layer reads."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return flatten_output(self.fc(self.phi(x)))  # [B]


@ARCHS.register("digits-cnn")
def build_digits_cnn(
    *,
    resolution: int = 16,
    channels: int = 1,
    z_dim: int = 32,
    init: str = "default",
    width: float = 1.0,
    d_width: float | None = None,
    upsample: str = "nearest",
) -> GanPair:
    """Digits nets at 16² or 32²; `width` scales G's base width (64) and, unless `d_width` is given, D's
    (32); `upsample` names G's ×2 stages in `UPSAMPLERS` ("nearest", the default, or "deconv")."""
    stages = lookup_resolution(STAGES, resolution, "digits-cnn")
    check_positive_int("channels", channels)
    check_positive_int("z_dim", z_dim)
    width, d_width = checked_widths(width, d_width)
    G = DigitsGenerator(z_dim, channels, stages, scaled(G_BASE_CHANNELS, width), upsample)
    D = DigitsDiscriminator(channels, stages, scaled(D_BASE_CHANNELS, d_width))
    return finish_pair(G, D, init)
