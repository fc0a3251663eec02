"""Architectures of docs/methods.md §7: shapes, parameter counts, initializations, piecewise linearity
of D."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lipgan.errors import ConfigError
from lipgan.nets import ARCHS, GanPair, Generator, arch_options, build_gan, count_parameters, init_weights
from lipgan.nets.digits import PHASE_FORM_MAX_CHANNELS, NearestUpConv2d, SpaceToDepthConv2d
from lipgan.nets.resnet import DBlock

IMAGE_CASES = [
    ("sngan-cnn", 32, 3),
    ("sngan-cnn", 48, 3),
    ("sngan-cnn", 64, 3),
    ("sngan-resnet", 32, 3),
    ("sngan-resnet", 48, 3),
    ("dcgan", 32, 3),
    ("dcgan", 64, 3),
    ("bssn-mnist", 28, 1),
    ("digits-cnn", 16, 1),
    ("digits-cnn", 32, 1),
]

# Piecewise-linear discriminators built without normalization layers, and the options that make them so.
PIECEWISE_LINEAR_CASES = [
    ("sngan-cnn", {"resolution": 32}),
    ("sngan-resnet", {"resolution": 32, "pooling": "avg"}),
    ("sngan-resnet", {"resolution": 32, "pooling": "sum"}),
    ("sngan-resnet", {"resolution": 32, "shortcut_after_relu": True}),
    ("dcgan", {"resolution": 32, "d_norm": "none"}),
    ("bssn-mnist", {"resolution": 28}),
    ("digits-cnn", {"resolution": 16}),
    ("mlp2d", {"activation": "leaky_relu"}),
]
# One case per family: the Hessian check needs a double backward, the slowest thing here.
HESSIAN_CASES = PIECEWISE_LINEAR_CASES[:2] + PIECEWISE_LINEAR_CASES[4:]


def conv_count(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def linear_count(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def bn_count(c: int) -> int:
    return 2 * c


def example_input(pair: GanPair, batch: int, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *pair.G.out_shape), generator=generator, dtype=dtype) * 2 - 1


def zero_biases(net: nn.Module) -> None:
    with torch.no_grad():
        for module in net.modules():
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_registered_architectures():
    unconditional = {"sngan-cnn", "sngan-resnet", "dcgan", "bssn-mnist", "mlp2d", "digits-cnn"}
    assert set(ARCHS.names()) == unconditional | {"biggan", "cgan-pd", "digits-cnn-cond", "mlp2d-cond"}
    for arch in ARCHS:
        assert {"resolution", "channels", "z_dim", "init"} <= set(arch_options(arch))


@pytest.mark.parametrize(("arch", "resolution", "channels"), IMAGE_CASES)
def test_image_shapes(arch, resolution, channels):
    pair = build_gan(arch, resolution=resolution, channels=channels)
    assert isinstance(pair.G, Generator)
    z = pair.G.sample_z(2)
    assert z.shape == (2, pair.G.z_dim)
    fake = pair.G(z)
    assert fake.shape == (2, channels, resolution, resolution)
    assert pair.G.out_shape == (channels, resolution, resolution)
    assert fake.abs().max() <= 1.0
    assert pair.D(fake).shape == (2,)


def test_other_channel_counts():
    for arch, resolution in [("sngan-cnn", 32), ("sngan-resnet", 32), ("dcgan", 32), ("digits-cnn", 16)]:
        pair = build_gan(arch, resolution=resolution, channels=1)
        fake = pair.G(pair.G.sample_z(2))
        assert fake.shape == (2, 1, resolution, resolution)
        assert pair.D(fake).shape == (2,)


def test_resnet128_shapes_on_meta_device():
    with torch.device("meta"):
        pair = build_gan("sngan-resnet", resolution=128)
        fake = pair.G(pair.G.sample_z(2))
        assert fake.shape == (2, 3, 128, 128)
        assert pair.D(fake).shape == (2,)


def test_mlp2d_shapes_and_ignored_image_options():
    pair = build_gan("mlp2d", resolution=32, channels=3)
    z = pair.G.sample_z(5)
    assert z.shape == (5, 2)
    points = pair.G(z)
    assert points.shape == (5, 2)
    assert pair.D(points).shape == (5,)
    hidden = [m.out_features for m in pair.D.modules() if isinstance(m, nn.Linear)]
    assert hidden == [512, 512, 1]


@pytest.mark.parametrize(
    ("options", "g_hidden", "d_hidden"),
    [
        ({"width": 2}, [1024, 1024], 1024),
        ({"width": 2, "d_width": 0.5}, [1024, 1024], 256),
        ({"g_depth": 3, "d_width": 0.5}, [512, 512, 512], 256),
        ({"g_depth": 1}, [512], 512),
    ],
)
def test_mlp2d_widths_and_generator_depth(options, g_hidden, d_hidden):
    pair = build_gan("mlp2d", **options)
    g_units = [m.out_features for m in pair.G.modules() if isinstance(m, nn.Linear)]
    d_units = [m.out_features for m in pair.D.modules() if isinstance(m, nn.Linear)]
    assert g_units == [*g_hidden, 2]
    assert d_units == [d_hidden, d_hidden, 1]
    assert pair.G(pair.G.sample_z(3)).shape == (3, 2)


@pytest.mark.parametrize("resolution", [32, 48, 64])
def test_sngan_cnn_exact_parameter_counts(resolution):
    side = resolution // 8  # M_g
    g_expected = (
        linear_count(128, side * side * 512)
        + bn_count(512)
        + conv_count(512, 256, 4)
        + bn_count(256)
        + conv_count(256, 128, 4)
        + bn_count(128)
        + conv_count(128, 64, 4)
        + bn_count(64)
        + conv_count(64, 3, 3)
    )
    d_expected = (
        conv_count(3, 64, 3)
        + conv_count(64, 64, 4)
        + conv_count(64, 128, 3)
        + conv_count(128, 128, 4)
        + conv_count(128, 256, 3)
        + conv_count(256, 256, 4)
        + conv_count(256, 512, 3)
        + linear_count(side * side * 512, 1)
    )
    pair = build_gan("sngan-cnn", resolution=resolution)
    assert count_parameters(pair.G) == g_expected
    assert count_parameters(pair.D) == d_expected


@pytest.mark.parametrize(("upsample", "kernel"), [("deconv", 4), ("nearest", 3)])
def test_digits_cnn_exact_parameter_counts(upsample, kernel):
    # 16²: FC to 4×4×128, two ×2 stages (128 → 64 without bias, 64 → 1 with bias); D 1 → 32 → 64, FC.
    g_expected = (
        32 * 4 * 4 * 128  # FC without bias
        + bn_count(128)
        + conv_count(128, 64, kernel, bias=False)
        + bn_count(64)
        + conv_count(64, 1, kernel)
    )
    d_expected = conv_count(1, 64, 4) + conv_count(64, 128, 4) + linear_count(4 * 4 * 128, 1)
    pair = build_gan("digits-cnn", resolution=16, upsample=upsample, d_width=2)
    assert count_parameters(pair.G) == g_expected
    assert count_parameters(pair.D) == d_expected


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("c_out", [3, 6])  # the phase form (few channels) and the transposed conv
def test_nearest_up_conv_equals_upsample_then_conv(bias, c_out):
    # Both forms of nearest ×2 + conv k3 p1 are the same linear map, borders included.
    assert (c_out <= PHASE_FORM_MAX_CHANNELS) == (c_out == 3)
    torch.manual_seed(0)
    layer = NearestUpConv2d(5, c_out, bias).double()
    reference = nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(5, c_out, 3, padding=1, bias=bias)
    )
    reference = reference.double()
    reference[1].load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 4, 6, dtype=torch.float64, requires_grad=True)  # [B, C, H, W], H ≠ W
    out, expected = layer(x), reference(x)  # [2, c_out, 8, 12]
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-13)
    grads = torch.autograd.grad(out.square().sum(), [x, layer.weight])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, reference[1].weight])
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c_in", [1, 3])
def test_space_to_depth_conv_equals_conv_k4_s2_p1(c_in):
    # The digits D's first layer: the same map and gradients as nn.Conv2d(c_in, c_out, 4, 2, 1), and the
    # second-order gradient the gradient normalizations take through it.
    torch.manual_seed(0)
    layer = SpaceToDepthConv2d(c_in, 5).double()
    reference = nn.Conv2d(c_in, 5, 4, stride=2, padding=1).double()
    reference.load_state_dict(layer.state_dict())
    assert (layer.stride, layer.padding, layer.kernel_size) == ((2, 2), (1, 1), (4, 4))
    x = torch.randn(2, c_in, 8, 12, dtype=torch.float64, requires_grad=True)  # H ≠ W
    out, expected = layer(x), reference(x)  # [2, 5, 4, 6]
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-13)

    def second_order(net: nn.Module, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        (grad_x,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
        return torch.autograd.grad(grad_x.square().sum(), [net.weight, net.bias])

    for grad, expected_grad in zip(second_order(layer, out), second_order(reference, expected)):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-11)


def g_block_count(c_in: int, c_out: int) -> int:
    """BN, conv3, BN, conv3 and the 1×1 shortcut of a GBlock."""
    return (
        bn_count(c_in)
        + conv_count(c_in, c_out, 3)
        + bn_count(c_out)
        + conv_count(c_out, c_out, 3)
        + conv_count(c_in, c_out, 1)
    )


def d_block_count(c_in: int, c_out: int, learned_shortcut: bool) -> int:
    """conv3 (hidden width c_in), conv3 and an optional 1×1 shortcut."""
    shortcut = conv_count(c_in, c_out, 1) if learned_shortcut else 0
    return conv_count(c_in, c_in, 3) + conv_count(c_in, c_out, 3) + shortcut


def d_input_block_count(c_in: int, c_out: int) -> int:
    return conv_count(c_in, c_out, 3) + conv_count(c_out, c_out, 3) + conv_count(c_in, c_out, 1)


RESNET_EXPECTED = {
    32: (
        linear_count(128, 16 * 256) + 3 * g_block_count(256, 256) + bn_count(256) + conv_count(256, 3, 3),
        d_input_block_count(3, 128)
        + d_block_count(128, 128, True)
        + 2 * d_block_count(128, 128, False)
        + linear_count(128, 1),
    ),
    48: (
        linear_count(128, 36 * 512)
        + g_block_count(512, 256)
        + g_block_count(256, 128)
        + g_block_count(128, 64)
        + bn_count(64)
        + conv_count(64, 3, 3),
        d_input_block_count(3, 64)
        + sum(d_block_count(c, 2 * c, True) for c in (64, 128, 256, 512))
        + linear_count(1024, 1),
    ),
    128: (
        linear_count(128, 16 * 1024)
        + g_block_count(1024, 1024)
        + sum(g_block_count(c, c // 2) for c in (1024, 512, 256, 128))
        + bn_count(64)
        + conv_count(64, 3, 3),
        d_input_block_count(3, 64)
        + sum(d_block_count(c, 2 * c, True) for c in (64, 128, 256, 512))
        + d_block_count(1024, 1024, False)
        + linear_count(1024, 1),
    ),
}

# GraN App. A: (G, D) parameters "≈ (4.3M, 1M) for 32², (4.9M, 10M) for 48², (32M, 29M) for 128²".
GRAN_REPORTED = {32: (4.3e6, 1.0e6), 48: (4.9e6, 10e6), 128: (32e6, 29e6)}


@pytest.mark.parametrize("resolution", [32, 48, 128])
def test_resnet_parameter_counts(resolution):
    with torch.device("meta"):
        pair = build_gan("sngan-resnet", resolution=resolution)
    counts = (count_parameters(pair.G), count_parameters(pair.D))
    assert counts == RESNET_EXPECTED[resolution]
    # The paper rounds to one or two significant figures; the largest gap is the 32² D, 1.054M against
    # "1M" (+5.4%), so 6% on either side is the tightest bound all six numbers meet.
    for actual, reported in zip(counts, GRAN_REPORTED[resolution]):
        assert abs(actual / reported - 1.0) < 0.06


def weighted_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def fan_in(layer: nn.Module) -> int:
    """Inputs per output unit of a Conv2d / Linear; for ConvTranspose2d, PyTorch's dim-1 convention."""
    weight = layer.weight
    receptive = weight[0, 0].numel() if weight.dim() > 2 else 1
    return weight.shape[1] * receptive


def test_kaiming_init_std_and_zero_biases():
    pair = build_gan("sngan-cnn", resolution=32, init="kaiming")
    checked = 0
    for layer in weighted_layers(pair.G) + weighted_layers(pair.D):
        assert layer.bias is not None
        torch.testing.assert_close(layer.bias, torch.zeros_like(layer.bias), rtol=0, atol=0)
        if layer.weight.numel() >= 20_000:  # sample std within 5% is then a > 6-sigma event to miss
            expected = math.sqrt(2.0 / fan_in(layer))
            assert abs(layer.weight.std().item() / expected - 1.0) < 0.05
            assert abs(layer.weight.mean().item()) < 0.05 * expected
            checked += 1
    assert checked >= 8


def test_normal002_init():
    pair = build_gan("dcgan", resolution=32, init="normal002")
    for layer in weighted_layers(pair.G) + weighted_layers(pair.D):
        if layer.weight.numel() >= 20_000:
            assert abs(layer.weight.std().item() / 0.02 - 1.0) < 0.05
        if layer.bias is not None:
            torch.testing.assert_close(layer.bias, torch.zeros_like(layer.bias), rtol=0, atol=0)
    scales = torch.cat([m.weight.detach() for m in pair.G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(scales.mean().item() - 1.0) < 0.005
    assert abs(scales.std().item() / 0.02 - 1.0) < 0.15  # 448 draws


def test_xavier_init_uses_mimicry_gains():
    pair = build_gan("sngan-resnet", resolution=32, init="xavier")
    block = pair.D.blocks[1]  # a DBlock with a learned shortcut
    for layer, gain in [(block.conv1, math.sqrt(2.0)), (block.conv2, math.sqrt(2.0)), (block.shortcut, 1.0)]:
        fan_out = layer.weight.shape[0] * layer.weight[0, 0].numel()
        bound = gain * math.sqrt(6.0 / (fan_in(layer) + fan_out))  # U(−bound, bound), std bound / sqrt(3)
        assert layer.weight.abs().max().item() <= bound
        assert layer.weight.abs().max().item() > 0.99 * bound  # >= 16 384 draws
        assert abs(layer.weight.std().item() / (bound / math.sqrt(3.0)) - 1.0) < 0.03


def test_default_init_redraws_pytorch_init():
    pair = build_gan("sngan-cnn", resolution=32, init="kaiming")
    init_weights(pair.D, "default")
    layer = pair.D.features[2]  # Conv2d 64 -> 128, k3
    bound = 1.0 / math.sqrt(fan_in(layer))
    assert layer.weight.abs().max().item() <= bound
    assert layer.bias.abs().max().item() > 0.5 * bound


@pytest.mark.parametrize(("arch", "options"), PIECEWISE_LINEAR_CASES)
def test_discriminator_is_positively_homogeneous_without_biases(arch, options):
    """With zero biases a ReLU / LeakyReLU network with linear pooling satisfies D(2x) = 2 D(x) exactly."""
    pair = build_gan(arch, **options)
    D = pair.D.double()
    zero_biases(D)
    x = example_input(pair, batch=3)
    out = D(x)
    assert out.abs().min() > 0
    torch.testing.assert_close(D(2.0 * x), 2.0 * out, rtol=0, atol=0)


def test_batchnorm_discriminator_is_not_homogeneous():
    """The negative control: a D with batch norm in training mode is scale invariant (up to BN's eps),
    not homogeneous."""
    pair = build_gan("dcgan", resolution=32, d_norm="bn")
    D = pair.D.double()
    zero_biases(D)
    x = example_input(pair, batch=3)
    torch.testing.assert_close(D(2.0 * x), D(x), rtol=1e-3, atol=1e-6)
    assert not torch.allclose(D(2.0 * x), 2.0 * D(x))


def hessian_vector_product(D: nn.Module, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    (hvp,) = torch.autograd.grad((grad * v).sum(), x, allow_unused=True, materialize_grads=True)
    return hvp


@pytest.mark.parametrize(("arch", "options"), HESSIAN_CASES)
def test_discriminator_hessian_vanishes(arch, options):
    """Piecewise-linear D (biases kept): its input Hessian is zero a.e. (docs/methods.md §1.3)."""
    pair = build_gan(arch, **options)
    D = pair.D.double()
    x = example_input(pair, batch=1)
    v = example_input(pair, batch=1, seed=1)
    hvp = hessian_vector_product(D, x, v)
    torch.testing.assert_close(hvp, torch.zeros_like(hvp), rtol=0, atol=0)


def test_batchnorm_discriminator_has_curvature():
    pair = build_gan("dcgan", resolution=32, d_norm="bn")
    D = pair.D.double()
    x = example_input(pair, batch=4)
    v = example_input(pair, batch=4, seed=1)
    assert hessian_vector_product(D, x, v).abs().max() > 1e-6


def test_sum_pooling_scales_avg_pooling_by_feature_map_area():
    """Same weights: D_sum(x) − b = (8·8) (D_avg(x) − b) at 32², the 8×8 final map of GraN App. D."""
    avg = build_gan("sngan-resnet", resolution=32, pooling="avg").D.double()
    summed = build_gan("sngan-resnet", resolution=32, pooling="sum").D.double()
    summed.load_state_dict(avg.state_dict())
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64) * 2 - 1
    bias = avg.fc.bias
    torch.testing.assert_close(summed(x) - bias, 64.0 * (avg(x) - bias), rtol=1e-12, atol=1e-12)


def test_mimicry_shortcut_sees_the_rectified_input():
    clean = DBlock(8, 8, downsample=False, shortcut_after_relu=False).double()
    mimicry = DBlock(8, 8, downsample=False, shortcut_after_relu=True).double()
    mimicry.load_state_dict(clean.state_dict())
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(mimicry(x), clean(torch.relu(x)), rtol=0, atol=0)
    assert not torch.allclose(mimicry(x), clean(x))


def test_bssn_mnist_generator_maps_sigmoid_to_unit_interval():
    pair = build_gan("bssn-mnist")
    captured = {}
    pair.G.to_image.register_forward_hook(lambda module, args, out: captured.update(logits=out))
    images = pair.G(pair.G.sample_z(4))
    torch.testing.assert_close(images, 2.0 * torch.sigmoid(captured["logits"]) - 1.0, rtol=0, atol=0)
    assert all(layer.bias is None for layer in weighted_layers(pair.D))


def test_sample_z_normal_moments_and_reproducibility():
    G = build_gan("sngan-cnn", resolution=32).G
    z = G.sample_z(4000, generator=torch.Generator().manual_seed(3))  # 512 000 draws
    assert z.shape == (4000, 128)
    assert abs(z.mean().item()) < 0.01
    assert abs(z.std().item() - 1.0) < 0.01
    again = G.sample_z(4000, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z, again, rtol=0, atol=0)
    assert G.double().sample_z(2).dtype == torch.float64


def test_sample_z_uniform_for_bssn_mnist():
    G = build_gan("bssn-mnist").G
    assert G.z_dist == "uniform"
    z = G.sample_z(5000, generator=torch.Generator().manual_seed(4))  # 500 000 draws
    assert z.shape == (5000, 100)
    assert z.min() >= -1.0 and z.max() <= 1.0
    assert z.min() < -0.999 and z.max() > 0.999
    assert abs(z.mean().item()) < 0.005
    assert abs(z.var().item() - 1.0 / 3.0) < 0.005


@pytest.mark.parametrize(
    ("arch", "resolution", "valid"),
    [
        ("sngan-cnn", 128, "32, 48, 64"),
        ("sngan-resnet", 64, "32, 48, 128"),
        ("dcgan", 48, "32, 64"),
        ("bssn-mnist", 32, "28"),
        ("digits-cnn", 28, "16, 32"),
    ],
)
def test_unsupported_resolution_lists_valid_ones(arch, resolution, valid):
    with pytest.raises(ConfigError, match=f"valid: {valid}$"):
        build_gan(arch, resolution=resolution)


@pytest.mark.parametrize(
    ("arch", "options", "message"),
    [
        ("dcgan", {"pooling": "sum"}, "no option 'pooling'"),
        ("sngan-resnet", {"pooling": "max"}, "valid: avg, sum"),
        ("dcgan", {"d_norm": "ln"}, "valid: bn, none"),
        ("sngan-cnn", {"init": "orthogonal"}, "valid: biggan, default, kaiming, normal002, xavier"),
        ("mlp2d", {"activation": "tanh"}, "valid: leaky_relu, relu"),
        ("digits-cnn", {"width": 0}, "width must be a positive number"),
        ("digits-cnn", {"d_width": -1.0}, "d_width must be a positive number"),
        ("mlp2d", {"d_width": 0}, "d_width must be a positive number"),
        ("mlp2d", {"g_depth": 0}, "g_depth must be a positive integer"),
        ("digits-cnn", {"upsample": "bilinear"}, "valid: deconv, nearest"),
        ("sngan-cnn", {"z_dim": -1}, "z_dim must be a positive integer"),
        ("no-such-net", {}, "valid: biggan, bssn-mnist, cgan-pd, dcgan"),
        ("sngan-resnet", {"plan": "biggan"}, "no plan .biggan.; valid: mimicry, gngan"),
        ("sngan-resnet", {"resolution": 256}, "valid: 32, 48, 128$"),
        ("biggan", {"num_classes": 0}, "num_classes must be a positive integer"),
        ("digits-cnn-cond", {"y_dim": 0}, "y_dim must be a positive integer"),
    ],
)
def test_bad_options_raise_config_error(arch, options, message):
    with pytest.raises(ConfigError, match=message):
        build_gan(arch, **options)
