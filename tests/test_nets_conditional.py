"""Class-conditional architectures (docs/methods.md §7.8) and the GN code's ResNet plans (§7.2): exact
parameter counts against the official modules, G(z, y) shapes and class dependence, the projection identity
of D, piecewise linearity of D in x, and spectral normalization of the projection embedding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lipgan.constraints.spectral import apply_spectral_norm
from lipgan.nets import build_gan, count_parameters
from lipgan.nets.conditional import ConditionalBatchNorm2d
from lipgan.training.build import constrain_discriminator
from lipgan.training.config import load_config

# (arch, options, input [C, H, W]) of every conditional pair, at a size a CPU test can run.
CONDITIONAL_CASES = [
    ("biggan", {}, (3, 32, 32)),
    ("cgan-pd", {}, (3, 32, 32)),
    ("digits-cnn-cond", {}, (1, 16, 16)),
    ("digits-cnn-cond", {"resolution": 32, "num_classes": 7}, (1, 32, 32)),
]
CASE_IDS = [f"{arch}-{options.get('resolution', '')}" for arch, options, _ in CONDITIONAL_CASES]

# Counted by building the official modules here with torch 2 and summing `numel` over `parameters()`
# (SN's `weight_orig` has the weight's count; its u, v are buffers): GNGAN-PyTorch models/biggan.py
# Generator32() / Discriminator32() and models/resnet.py ResGenerator{32,48,128,256}(128) /
# ResDiscriminator{...}(); Mimicry torch_mimicry/nets/cgan_pd/cgan_pd_32.py CGANPDGenerator32(10) /
# CGANPDDiscriminator32(10).
OFFICIAL_COUNTS = {
    ("biggan", 32): (4_304_387, 4_207_361),
    ("cgan-pd", 32): (4_304_387, 1_055_105),
    ("gngan", 32): (4_276_739, 1_053_825),
    ("gngan", 48): (4_878_083, 4_859_073),
    ("gngan", 128): (32_150_787, 38_419_137),
    ("gngan", 256): (37_135_107, 43_401_409),
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def build_meta(arch: str, **options):
    with torch.device("meta"):
        return build_gan(arch, **options)


@pytest.mark.parametrize(("arch", "resolution"), [("biggan", 32), ("cgan-pd", 32)])
def test_conditional_parameter_counts_equal_the_official_ones(arch, resolution):
    pair = build_meta(arch, resolution=resolution)
    assert (count_parameters(pair.G), count_parameters(pair.D)) == OFFICIAL_COUNTS[(arch, resolution)]


@pytest.mark.parametrize("resolution", [32, 48, 128, 256])
def test_gngan_resnet_plan_parameter_counts_equal_the_official_ones(resolution):
    pair = build_meta("sngan-resnet", resolution=resolution, plan="gngan")
    assert (count_parameters(pair.G), count_parameters(pair.D)) == OFFICIAL_COUNTS[("gngan", resolution)]
    fake = pair.G(pair.G.sample_z(2))
    assert fake.shape == (2, 3, resolution, resolution) and pair.D(fake).shape == (2,)


def test_biggan_layout():
    """Widths 256 everywhere, no affine BN inside G's blocks (conditional gains and biases instead),
    nearest up-sampling, sum pooling, a projection embedding [10, 256]."""
    pair = build_gan("biggan")
    cbns = [m for m in pair.G.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(cbns) == 6 and all(m.gain.weight.shape == (10, 256) for m in cbns)
    assert all(not m.norm.affine for m in cbns)
    assert pair.D.embed.weight.shape == (10, 256) and pair.D.fc.in_features == 256
    h = torch.arange(16.0).view(1, 1, 4, 4)
    nearest = h.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # each pixel copied to a 2×2 patch
    assert torch.equal(pair.G.blocks[0].up(h), nearest)
    assert not torch.equal(build_gan("cgan-pd").G.blocks[0].up(h), nearest)  # Mimicry's is bilinear
    assert torch.equal(pair.D.pool(torch.ones(1, 256, 8, 8)), torch.full((1, 256), 64.0))  # a sum over 8×8


@pytest.mark.parametrize(("arch", "options", "shape"), CONDITIONAL_CASES, ids=CASE_IDS)
def test_generator_shapes_and_class_dependence(arch, options, shape):
    pair = build_gan(arch, **options)
    G = pair.G.eval()  # running BN statistics: each sample depends on its own z and y only
    assert G.conditional and G.num_classes == options.get("num_classes", 10)
    assert pair.D.num_classes == G.num_classes
    z = G.sample_z(4)
    y = torch.tensor([0, 1, 2, 3])
    fake = G(z, y)
    assert fake.shape == (4, *shape) and G.out_shape == shape
    assert fake.abs().max() <= 1.0
    other = G(z, (y + 1) % G.num_classes)
    per_sample = (fake - other).flatten(1).abs().amax(dim=1)
    assert (per_sample > 1e-4).all(), per_sample  # the class changes every sample
    assert torch.equal(G(z, y), fake)  # and nothing else does
    assert pair.D(fake, y).shape == (4,)
    sampled = G.sample(3, generator=torch.Generator().manual_seed(1))
    assert sampled.shape == (3, *shape)


@pytest.mark.parametrize(("arch", "options", "shape"), CONDITIONAL_CASES, ids=CASE_IDS)
def test_projection_identity(arch, options, shape):
    """D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ with φ, ψ, embed the net's own submodules (Miyato & Koyama
    2018, Eq. 3), in float64."""
    D = build_gan(arch, **options).D.double()
    x = torch.rand(5, *shape, dtype=torch.float64) * 2 - 1
    y = torch.tensor([0, 1, 2, 3, 4]) % D.num_classes
    digits = arch == "digits-cnn-cond"
    phi = D.features(x).flatten(1) if digits else D.pool(torch.relu(D.blocks(x)))  # [B, dim]
    expected = D.fc(phi)[:, 0] + (D.embed.weight[y] * phi).sum(dim=1)
    torch.testing.assert_close(D(x, y), expected, rtol=1e-6, atol=0.0)
    # the projection term alone: same x, another label moves D by ⟨embed(y') − embed(y), φ(x)⟩
    y2 = (y + 1) % D.num_classes
    shift = ((D.embed.weight[y2] - D.embed.weight[y]) * phi).sum(dim=1)
    torch.testing.assert_close(D(x, y2) - D(x, y), shift, rtol=1e-6, atol=1e-12)
    assert shift.abs().min() > 1e-6


@pytest.mark.parametrize(
    ("arch", "options", "shape"), [CONDITIONAL_CASES[1], CONDITIONAL_CASES[2]], ids=CASE_IDS[1:3]
)
def test_projection_discriminator_is_piecewise_linear(arch, options, shape):
    """No batch norm and only ReLU / LeakyReLU in D: the Hessian in x is zero (exact GN, §1.3), while the
    gradient is not. biggan shares cgan-pd's D blocks (wider), so cgan-pd stands for both here."""
    D = build_gan(arch, **options).D.double()
    if arch == "cgan-pd":  # a narrow copy of the same blocks: the double backward of 1M weights is slow
        from lipgan.nets.conditional import ProjectionResNetDiscriminator
        from lipgan.nets.resnet import ResNetSpec

        D = ProjectionResNetDiscriminator(
            ResNetSpec(4, (8,) * 4, (8,) * 4, (True, True, False, False)), 3, "sum", False, 10
        ).double()
    x = torch.rand(2, *shape, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([3, 7])
    (grad,) = torch.autograd.grad(D(x, y).sum(), x, create_graph=True)
    v = torch.randn_like(x)
    (hvp,) = torch.autograd.grad((grad * v).sum(), x, allow_unused=True)
    assert grad.abs().max() > 1e-6
    assert hvp is None or hvp.abs().max() < 1e-12


def test_biggan_init_redraws_embeddings_and_zeroes_biases():
    """GN's res32_weights_init: Xavier-uniform on every Conv / Linear / Embedding, zero biases."""
    pair = build_gan("biggan")
    gain = pair.G.blocks[0].norm1.gain.weight  # [10, 256]: bound sqrt(6 / 266)
    bound = (6.0 / (10 + 256)) ** 0.5
    assert gain.abs().max() <= bound and gain.abs().max() > 0.9 * bound
    assert all(m.bias.abs().max() == 0 for m in pair.D.modules() if isinstance(m, nn.Conv2d))
    cgan = build_gan("cgan-pd")  # Mimicry's CBN init: scales 1 + N(0, 0.02²), biases 0
    gain = cgan.G.blocks[0].norm1.gain.weight
    assert 0.015 < gain.std().item() < 0.025 and cgan.G.blocks[0].norm1.bias.weight.abs().max() == 0


def embedding_sigma(D: nn.Module) -> float:
    return torch.linalg.matrix_norm(D.embed.weight.detach(), ord=2).item()


@pytest.mark.parametrize("variant", ["sn", "bsn", "sn-strict"])
def test_spectral_embedding_option_normalizes_the_projection(variant):
    """constraint.spectral_embedding (default true): the embedding's effective weight has spectral norm
    1 after the power iterations; false leaves it as it was, with a spectral norm far from 1."""
    torch.manual_seed(0)
    D = build_gan("digits-cnn-cond").D.double()
    raw = D.embed.weight.detach().clone()
    x = torch.rand(4, 1, 16, 16, dtype=torch.float64) * 2 - 1
    cfg = load_config(overrides=[f"constraint.spectral={variant}", "constraint.gradnorm=null"])
    assert cfg.constraint.spectral_embedding is True
    constrained = constrain_discriminator(D, cfg, x)
    for _ in range(300):  # power iterations in training mode (one per forward)
        constrained(x, torch.tensor([0, 1, 2, 3]))
    assert embedding_sigma(constrained) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(constrained.embed.parametrizations.weight.original, raw, rtol=0, atol=0)

    torch.manual_seed(0)
    D = build_gan("digits-cnn-cond").D.double()
    off = load_config(overrides=[f"constraint.spectral={variant}", "constraint.spectral_embedding=false"])
    constrained = constrain_discriminator(D, off, x)
    assert not hasattr(constrained.embed, "parametrizations")
    torch.testing.assert_close(constrained.embed.weight, raw, rtol=0, atol=0)
    assert embedding_sigma(constrained) > 1.5  # Xavier rows of 1024: far from 1, so the test can fail
    assert hasattr(constrained.fc, "parametrizations")  # the other layers are normalized either way


def test_apply_spectral_norm_leaves_embeddings_alone_by_default():
    """The library call keeps its contract (every Conv / Linear); embeddings only when asked."""
    D = apply_spectral_norm(build_gan("digits-cnn-cond").D, "sn")
    assert not hasattr(D.embed, "parametrizations") and hasattr(D.fc, "parametrizations")
