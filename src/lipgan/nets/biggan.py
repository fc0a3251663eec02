"""BigGAN at 32² for conditional CIFAR-10, as the GN code builds it (GN Table 4, PGN Table V; docs/methods.md
§7.8): basiclab/GNGAN-PyTorch `models/biggan.py`, `Generator32` and `Discriminator32` with `ch=64`.

- G: z ∈ R¹²⁸ → Linear to 4×4×256 → three up-blocks 256 → 256 (conditional BN with per-class gain and
  bias embeddings, ReLU, nearest ×2, conv3; conditional BN, ReLU, conv3; shortcut nearest ×2, conv1) →
  BN, ReLU, conv3 to 3 channels, tanh.
- D: the optimized input block 3 → 256 (down), a down block and two plain blocks at 256, ReLU, global *sum*
  pooling, Linear(256, 1) plus the projection ⟨embed(y), φ(x)⟩ with embed [num_classes, 256].

At 32² the official code has no shared class embedding (that, and the split latent, belong to its
`Generator128`): each conditional BN holds its own embeddings (`cbn_linear=False`). Its spectral norm is
left out here (the trainer applies the constraint); SN's `weight_orig` has the weight's count and its
`u`, `v` are buffers, so the parameter counts are those of the official modules: G 4,304,387 and
D 4,207,361 (tests/test_nets.py).
"""

from __future__ import annotations

from torch import nn

from lipgan.nets.base import ARCHS, INIT_SCHEMES, GanPair, lookup_resolution
from lipgan.nets.conditional import conditional_resnet_pair
from lipgan.nets.resnet import ResNetSpec

BIGGAN_CH = 64  # the official `ch`; every block of the 32² nets is 4·ch wide
BIGGAN_SPECS = {
    32: ResNetSpec(
        4, (4 * BIGGAN_CH,) * 4, (4 * BIGGAN_CH,) * 4, (True, True, False, False), "nearest", "out"
    ),
}


@INIT_SCHEMES.register("biggan")
def init_biggan(layer: nn.Module) -> None:
    """`res32_weights_init` of the GN code's BigGAN: Xavier-uniform (gain 1) weights on every Conv,
    Linear and Embedding (the conditional-BN and projection embeddings too), zero biases; batch norms
    keep PyTorch's init."""
    if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)):
        nn.init.xavier_uniform_(layer.weight)
        if getattr(layer, "bias", None) is not None:
            nn.init.zeros_(layer.bias)


@ARCHS.register("biggan")
def build_biggan(
    *,
    resolution: int = 32,
    channels: int = 3,
    z_dim: int = 128,
    num_classes: int = 10,
    init: str = "biggan",
) -> GanPair:
    """GN's BigGAN-32 for class-conditional CIFAR-10 (G(z, y), D(x, y); docs/methods.md §7.8)."""
    spec = lookup_resolution(BIGGAN_SPECS, resolution, "biggan")
    return conditional_resnet_pair(spec, channels, z_dim, num_classes, "sum", init)
