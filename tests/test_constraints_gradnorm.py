"""Gradient normalizations (docs/methods.md §2) on tiny piecewise-linear discriminators, in float64.

The expected values are written out here from docs/methods.md §2, independently of the formulas in
``lipgan.constraints.gradnorm_methods``; ``f`` and ``∇ₓf`` are computed with plain autograd.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn

from lipgan.constraints.gradnorm import (
    DSTEPS,
    GRADNORM_METHODS,
    GradNormD,
    gradient_normalize,
    gradient_normalize_with_raw,
)
from lipgan.errors import ConfigError
from lipgan.losses import get_loss

METHODS = ["gn", "gn0", "gn1", "gran", "gran-inv", "pgn", "pgn-grad"]
LOSS_NAMES = ["minimax", "ns", "wgan", "hinge", "soft-hinge", "ls", "ls0", "cos", "exp"]
NETS = ["conv", "mlp"]
TAU, EPS = 1.25, 0.3  # K = 0.8; not the defaults, so a swapped or ignored argument shows
K = 1.0 / TAU
EXACT = {"rtol": 1e-10, "atol": 1e-12}  # same float64 arithmetic in another order

# f̂ as a function of f, n = ||∇f|| and n1 = ||𝟙 − ∇f|| (docs/methods.md §2.1 table).
EXPECTED_OUTPUT = {
    "gn": lambda f, n, n1: f / (n + f.abs()),
    "gn1": lambda f, n, n1: f / (n + 1),
    "gn0": lambda f, n, n1: f / n,
    "gran": lambda f, n, n1: (f / TAU) * n / (n**2 + EPS),
    "gran-inv": lambda f, n, n1: (f / TAU) / (n + EPS),
    "pgn": lambda f, n, n1: (1 - f) / (n1 + (1 - f).abs()),
    "pgn-grad": lambda f, n, n1: (1 - f) / (n + (1 - f).abs()),
}

# ||∇ₓf̂|| for piecewise-linear f, where ∇n = ∇n1 = 0 a.e.
EXPECTED_INPUT_GRAD_NORM = {
    "gn": lambda f, n, n1: (n / (n + f.abs())) ** 2,
    "gn1": lambda f, n, n1: n / (n + 1),
    "gn0": lambda f, n, n1: torch.ones_like(n),
    "gran": lambda f, n, n1: K * n**2 / (n**2 + EPS),
    "gran-inv": lambda f, n, n1: K * n / (n + EPS),
    "pgn": lambda f, n, n1: n * n1 / (n1 + (1 - f).abs()) ** 2,
    "pgn-grad": lambda f, n, n1: (n / (n + (1 - f).abs())) ** 2,
}

# c = ∂f̂/∂f at a fixed norm, so that ∇ₓf̂ = c · ∇ₓf for piecewise-linear f (docs/methods.md §2.8 table).
EXPECTED_INPUT_GRAD_SCALE = {
    "gn": lambda f, n, n1: n / (n + f.abs()) ** 2,
    "gn1": lambda f, n, n1: 1 / (n + 1),
    "gn0": lambda f, n, n1: 1 / n,
    "gran": lambda f, n, n1: n / (TAU * (n**2 + EPS)),
    "gran-inv": lambda f, n, n1: 1 / (TAU * (n + EPS)),
    "pgn": lambda f, n, n1: -n1 / (n1 + (1 - f).abs()) ** 2,
    "pgn-grad": lambda f, n, n1: -n / (n + (1 - f).abs()) ** 2,
}


class ConvD(nn.Module):
    """Two tiny convolutions with LeakyReLU and a linear head: [B, 2, 6, 6] -> [B, 1]."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4, 4, 3, stride=2, padding=1),  # [B, 4, 3, 3]
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(36, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)  # [B, 1]


class MlpD(nn.Module):
    """A 3 -> 8 -> 8 -> 1 LeakyReLU MLP: [B, 3] -> [B]."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(3, 8), nn.Linear(8, 8), nn.Linear(8, 1)])
        self.act = nn.LeakyReLU(0.2)

    def pre_activations(self, x: Tensor) -> list[Tensor]:
        """Inputs of every LeakyReLU, to check that finite differences cross no kink."""
        pre = []
        for layer in self.layers[:-1]:
            pre.append(layer(x))
            x = self.act(pre[-1])
        return pre

    def forward(self, x: Tensor) -> Tensor:
        return self.layers[-1](self.act(self.pre_activations(x)[-1])).squeeze(-1)  # [B]


class LabelD(nn.Module):
    """A projection discriminator ``head(h) + <embed(y), h>`` with labels y: ([B, 3], [B]) -> [B]."""

    def __init__(self, n_classes: int = 3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 8), nn.LeakyReLU(0.2))
        self.head = nn.Linear(8, 1)
        self.embed = nn.Embedding(n_classes, 8)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.body(x)  # [B, 8]
        return self.head(h).squeeze(-1) + (self.embed(y) * h).sum(1)  # [B]


def make_setting(net: str, seed: int = 0) -> tuple[nn.Module, nn.Module, Tensor, Tensor]:
    """(D, G, x, z) in float64: a discriminator, a tiny LeakyReLU generator onto D's input space, a data
    batch x and latents z."""
    torch.manual_seed(seed)
    if net == "conv":
        D = ConvD()
        G = nn.Sequential(nn.Linear(3, 16), nn.LeakyReLU(0.2), nn.Linear(16, 72), nn.Unflatten(1, (2, 6, 6)))
        x, z = torch.randn(4, 2, 6, 6), torch.randn(4, 3)
    else:
        D = MlpD()
        G = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 3))
        x, z = torch.randn(5, 3), torch.randn(5, 2)
    return D.double(), G.double(), x.double(), z.double()


def raw_and_norms(D, x: Tensor, *args) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """f [B], ∇ₓf [B, ...], n = ||∇ₓf|| [B] and n1 = ||𝟙 − ∇ₓf|| [B], by plain autograd."""
    x = x.detach().requires_grad_()
    f = D(x, *args).reshape(-1)
    (grad,) = torch.autograd.grad(f.sum(), x)
    n = grad.reshape(len(x), -1).square().sum(1).sqrt()
    n1 = (1 - grad).reshape(len(x), -1).square().sum(1).sqrt()
    return f.detach(), grad, n, n1


def per_sample_norm(t: Tensor) -> Tensor:
    return t.reshape(len(t), -1).square().sum(1).sqrt()


def test_registry_holds_the_seven_methods():
    assert GRADNORM_METHODS.names() == sorted(METHODS)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["full", "generator"])
def test_output_and_grad_norm_equal_the_formula(method, net, mode):
    D, _, x, _ = make_setting(net)
    f, _, n, n1 = raw_and_norms(D, x)
    result = gradient_normalize_with_raw(D, x, method=method, tau=TAU, eps=EPS, mode=mode)
    torch.testing.assert_close(result.out, EXPECTED_OUTPUT[method](f, n, n1), **EXACT)
    torch.testing.assert_close(result.grad_norm, n, **EXACT)
    torch.testing.assert_close(result.raw, f, **EXACT)
    assert result.out.shape == result.grad_norm.shape == (len(x),)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["full", "generator"])
def test_input_gradient_norm_equals_closed_form(method, net, mode):
    D, _, x, _ = make_setting(net)
    f, grad_f, n, n1 = raw_and_norms(D, x)
    x = x.clone().requires_grad_()
    out, _ = gradient_normalize(D, x, method=method, tau=TAU, eps=EPS, mode=mode)
    (grad_out,) = torch.autograd.grad(out.sum(), x)
    expected = EXPECTED_INPUT_GRAD_NORM[method](f, n, n1)
    torch.testing.assert_close(per_sample_norm(grad_out), expected, rtol=1e-9, atol=1e-12)
    # and the direction is ±∇f with the tabulated scale c
    scale = EXPECTED_INPUT_GRAD_SCALE[method](f, n, n1)
    torch.testing.assert_close(grad_out, scale.view(-1, *[1] * (x.dim() - 1)) * grad_f, rtol=1e-9, atol=1e-12)


def test_gran_input_gradient_norm_approaches_k_when_n_squared_dominates_eps():
    D, _, x, _ = make_setting("conv")
    x = x.clone().requires_grad_()
    out, n = gradient_normalize(D, x, method="gran", tau=TAU, eps=1e-9)
    (grad_out,) = torch.autograd.grad(out.sum(), x)
    assert n.min() > 1e-2  # so n²/(n² + ε) = 1 to within 1e-5
    torch.testing.assert_close(per_sample_norm(grad_out), torch.full_like(n, K), rtol=1e-5, atol=0)


@pytest.mark.parametrize("bias", [1e4, -1e4])
def test_gn_and_pgn_outputs_stay_in_unit_interval_for_large_raw_outputs(bias):
    D, _, x, _ = make_setting("conv")
    with torch.no_grad():
        for p in D.parameters():
            p.mul_(10.0)
        D.body[-1].bias.fill_(bias)  # pushes f far from 0 while ∇f stays as it is
    x = torch.cat([x, -x])  # [8, 2, 6, 6]
    f, _, n, _ = raw_and_norms(D, x)
    assert n.min() > 10 and f.abs().min() > 10 * n.max()  # large f: the regime where the bound is nearly met
    for method in ("gn", "pgn", "pgn-grad"):
        out, _ = gradient_normalize(D, x, method=method)
        assert out.abs().max() <= 1.0
        assert out.abs().min() >= 0.9
    unbounded, _ = gradient_normalize(D, x, method="gn1")
    assert unbounded.abs().min() > 1.0  # the inputs do test the bound: GN₁ has none


def _normalized_generator_output(D, G, z: Tensor, method: str, mode: str) -> tuple[Tensor, Tensor]:
    """(x = G(z) [B, ...], f̂(x) [B]); x is a non-leaf that carries G's graph."""
    x = G(z)
    out, _ = gradient_normalize(D, x, method=method, tau=TAU, eps=EPS, mode=mode)
    return x, out


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("method", METHODS)
def test_generator_mode_gradients_equal_full_mode_for_every_loss(method, net):
    D, G, _, z = make_setting(net)
    params = list(G.parameters())
    x_full, out_full = _normalized_generator_output(D, G, z, method, "full")
    x_fast, out_fast = _normalized_generator_output(D, G, z, method, "generator")
    torch.testing.assert_close(out_fast, out_full, **EXACT)
    for loss_name in LOSS_NAMES:
        g_loss = get_loss(loss_name).g_loss
        # gradients w.r.t. the generated batch x and w.r.t. every parameter of G
        full = torch.autograd.grad(g_loss(out_full), [x_full, *params], retain_graph=True)
        fast = torch.autograd.grad(g_loss(out_fast), [x_fast, *params], retain_graph=True)
        assert min(g.abs().max() for g in full) > 1e-6, loss_name
        for g_fast, g_full in zip(fast, full, strict=True):
            torch.testing.assert_close(
                g_fast, g_full, rtol=1e-6, atol=1e-12, msg=lambda m, n=loss_name: f"{n}: {m}"
            )


@pytest.mark.parametrize("method", METHODS)
def test_generator_mode_input_gradient_equals_full_mode_for_data_inputs(method):
    D, _, x, _ = make_setting("conv")
    grads = []
    for mode in ("full", "generator"):
        leaf = x.clone().requires_grad_()
        out, _ = gradient_normalize(D, leaf, method=method, tau=TAU, eps=EPS, mode=mode)
        grads.append(torch.autograd.grad(get_loss("ns").g_loss(out), leaf)[0])
    assert grads[0].abs().max() > 1e-6
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-12)


def test_generator_mode_takes_the_input_gradient_without_a_graph():
    D, _, x, _ = make_setting("conv")
    _, n_full = gradient_normalize(D, x, method="gn", mode="full")
    _, n_fast = gradient_normalize(D, x, method="gn", mode="generator")
    assert n_full.requires_grad
    assert not n_fast.requires_grad


class _CountBackward(torch.autograd.Function):
    calls = 0

    @staticmethod
    def forward(ctx, t: Tensor) -> Tensor:
        return t.clone()

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:
        _CountBackward.calls += 1
        return g


@pytest.mark.parametrize(("mode", "backwards"), [("generator", 1), ("full", 2)])
def test_generator_mode_runs_one_backward_of_the_discriminator(mode, backwards):
    """The G step's loss reaches x from the input gradient already taken (§2.8), not by a second backward
    through D; the full mode differentiates D's graph twice (input gradient, then the loss)."""
    D, G, _, z = make_setting("conv")
    _CountBackward.calls = 0
    out, _ = gradient_normalize(
        lambda x: D(_CountBackward.apply(x)), G(z), method="gn", mode=mode, dstep="double-backward"
    )
    get_loss("hinge").g_loss(out).backward()
    assert _CountBackward.calls == backwards


def _weighted_output(D: MlpD, x: Tensor, weights: Tensor, method: str, mode: str = "full") -> Tensor:
    out, _ = gradient_normalize(D, x, method=method, tau=TAU, eps=EPS, mode=mode)
    return (weights * out).sum()


def _central_differences(D: MlpD, x: Tensor, weights: Tensor, method: str, h: float) -> list[Tensor]:
    grads = []
    for p in D.parameters():
        grad = torch.empty_like(p)
        flat_p, flat_grad = p.data.view(-1), grad.view(-1)
        for i in range(flat_p.numel()):
            original = flat_p[i].item()
            flat_p[i] = original + h
            upper = _weighted_output(D, x, weights, method).item()
            flat_p[i] = original - h
            lower = _weighted_output(D, x, weights, method).item()
            flat_p[i] = original
            flat_grad[i] = (upper - lower) / (2 * h)
        grads.append(grad)
    return grads


@pytest.mark.parametrize("method", METHODS)
def test_full_mode_parameter_gradients_equal_finite_differences(method):
    D, _, x, _ = make_setting("mlp", seed=3)
    weights = torch.randn(len(x), dtype=torch.float64)
    f, _, _, _ = raw_and_norms(D, x)
    with torch.no_grad():
        margin = min(pre.abs().min().item() for pre in D.pre_activations(x))
    # no LeakyReLU kink, and no kink of |f| or |1 - f|, within reach of the perturbation h = 1e-6
    assert margin > 1e-3
    assert f.abs().min() > 1e-3 and (1 - f).abs().min() > 1e-3
    numeric = _central_differences(D, x, weights, method, h=1e-6)
    analytic = torch.autograd.grad(_weighted_output(D, x, weights, method), list(D.parameters()))
    for a, n in zip(analytic, numeric, strict=True):
        torch.testing.assert_close(a, n, rtol=1e-5, atol=1e-8)
    # generator mode is for G steps: its output carries no gradient to D's parameters at all
    first_order = torch.autograd.grad(
        _weighted_output(D, x, weights, method, mode="generator"), list(D.parameters()), allow_unused=True
    )
    assert all(g is None for g in first_order)


@pytest.mark.parametrize("method", METHODS)
def test_output_shape_b1_and_b_agree(method):
    D, _, x, _ = make_setting("conv")
    assert D(x).shape == (len(x), 1)
    out_b1, n_b1 = gradient_normalize(D, x, method=method)
    out_b, n_b = gradient_normalize(lambda inp: D(inp).squeeze(1), x, method=method)
    torch.testing.assert_close(out_b1, out_b, rtol=0, atol=0)
    torch.testing.assert_close(n_b1, n_b, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:constraint.dstep=tangent")  # repeat is not replayable: it falls back
def test_output_of_the_wrong_shape_raises():
    D, _, x, _ = make_setting("conv")
    with pytest.raises(ConfigError, match=r"\[B\] or \[B, 1\]"):
        gradient_normalize(lambda inp: D(inp).repeat(1, 2), x)


@pytest.mark.parametrize("method", METHODS)
def test_extra_args_and_kwargs_reach_the_discriminator(method):
    torch.manual_seed(1)
    D = LabelD().double()
    x = torch.randn(6, 3, dtype=torch.float64)
    y, other_y = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([1, 2, 0, 1, 2, 0])
    expected, _ = gradient_normalize(lambda inp: D(inp, y), x, method=method, tau=TAU, eps=EPS)
    positional, _ = gradient_normalize(D, x, y, method=method, tau=TAU, eps=EPS)
    keyword, _ = gradient_normalize(D, x, y=y, method=method, tau=TAU, eps=EPS)
    torch.testing.assert_close(positional, expected, rtol=0, atol=0)
    torch.testing.assert_close(keyword, expected, rtol=0, atol=0)
    f, _, n, n1 = raw_and_norms(D, x, y)
    torch.testing.assert_close(expected, EXPECTED_OUTPUT[method](f, n, n1), **EXACT)
    with_other_labels, _ = gradient_normalize(D, x, other_y, method=method, tau=TAU, eps=EPS)
    assert (with_other_labels - expected).abs().max() > 1e-3  # the labels do matter


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["full", "generator"])
def test_gradnormd_equals_gradient_normalize(method, mode):
    D, _, x, _ = make_setting("conv")
    wrapped = GradNormD(D, method=method, tau=TAU, eps=EPS)
    out = wrapped(x, mode=mode)
    expected, n = gradient_normalize(D, x, method=method, tau=TAU, eps=EPS, mode=mode)
    torch.testing.assert_close(out, expected, **EXACT)
    torch.testing.assert_close(wrapped.last_grad_norm, n.detach(), **EXACT)
    torch.testing.assert_close(wrapped.last_raw, D(x).reshape(-1).detach(), **EXACT)
    assert not wrapped.last_grad_norm.requires_grad and not wrapped.last_raw.requires_grad
    assert {id(p) for p in wrapped.parameters()} == {id(p) for p in D.parameters()}


def test_gradnormd_passes_labels_through():
    torch.manual_seed(1)
    D = LabelD().double()
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 1])
    wrapped = GradNormD(D, method="gran", tau=TAU, eps=EPS)
    expected, _ = gradient_normalize(D, x, y=y, method="gran", tau=TAU, eps=EPS)
    torch.testing.assert_close(wrapped(x, y=y), expected, **EXACT)


@pytest.mark.parametrize("mode", ["full", "generator"])
def test_caller_tensor_is_left_alone_and_generator_receives_gradients(mode):
    D, G, x, z = make_setting("conv")
    gradient_normalize(D, x, method="gn", mode=mode)
    assert not x.requires_grad and x.grad is None
    leaf = x.clone().requires_grad_()
    gradient_normalize(D, leaf, method="gn", mode=mode)
    assert leaf.grad is None
    out, _ = gradient_normalize(D, G(z), method="gn", mode=mode)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().max() > 0 for p in G.parameters())


def test_works_under_no_grad_and_returns_detached_values():
    D, _, x, _ = make_setting("mlp")
    expected, n = gradient_normalize(D, x, method="gran", tau=TAU, eps=EPS)
    with torch.no_grad():
        out, n_no_grad = gradient_normalize(D, x, method="gran", tau=TAU, eps=EPS)
    assert not out.requires_grad and not n_no_grad.requires_grad
    torch.testing.assert_close(out, expected.detach(), **EXACT)
    torch.testing.assert_close(n_no_grad, n.detach(), **EXACT)


def test_unknown_method_mode_or_bad_hyperparameters_raise_config_error():
    D, _, x, _ = make_setting("mlp")
    with pytest.raises(ConfigError, match="gn, gn0, gn1, gran, gran-inv, pgn, pgn-grad"):
        gradient_normalize(D, x, method="spectral")
    with pytest.raises(ConfigError, match="full, generator"):
        gradient_normalize(D, x, mode="fast")
    with pytest.raises(ConfigError, match="gran-inv"):
        GradNormD(D, method="gram")
    with pytest.raises(ConfigError, match="tau > 0"):
        gradient_normalize(D, x, method="gran", tau=0.0)
    with pytest.raises(ConfigError, match="eps >= 0"):
        GradNormD(D, method="gran", eps=-1.0)


# --- the D-step implementations (docs/methods.md §2.11) ----------------------------------------------------

REFERENCE_DSTEP = "double-backward"
OPTIMIZED_DSTEPS = [name for name in DSTEPS.names() if name != REFERENCE_DSTEP]
DSTEP_RTOL = 1e-6  # relative, two-sided: ||a − b|| ≤ 1e-6 · min(||a||, ||b||)


def assert_same_gradients(got: list[Tensor], want: list[Tensor]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        scale = min(a.norm(), b.norm())
        assert scale > 0, "a gradient that is zero tests nothing"
        assert (a - b).norm() <= DSTEP_RTOL * scale, ((a - b).norm() / scale).item()


def _resnet_d() -> nn.Module:
    from lipgan.nets import build_gan

    return build_gan("sngan-resnet", resolution=32).D


def _sngan_cnn_d() -> nn.Module:
    from lipgan.nets import build_gan

    return build_gan("sngan-cnn", resolution=32).D


def _with_sn(build):
    def make() -> nn.Module:
        from lipgan.constraints.spectral import apply_spectral_norm

        D = build()
        apply_spectral_norm(D, "sn")
        return D

    return make


def _digits_d() -> nn.Module:
    from lipgan.nets import build_gan

    return build_gan("digits-cnn", resolution=16, channels=1).D


DSTEP_NETS = {
    "digits-cnn": (_digits_d, (1, 16, 16)),  # the default run's D: zero pad + space-to-depth first
    "sngan-cnn": (_sngan_cnn_d, (3, 32, 32)),
    "sngan-resnet": (_resnet_d, (3, 32, 32)),
    "sngan-cnn+sn": (_with_sn(_sngan_cnn_d), (3, 32, 32)),
    "conv": (ConvD, (2, 6, 6)),
    "mlp": (MlpD, (3,)),
}


def _d_step_gradients(D: nn.Module, x: Tensor, method: str, dstep: str, *d_args) -> list[Tensor]:
    """Gradients of a hinge D loss of the normalized outputs plus a term of n, w.r.t. D's parameters and x
    (x stands for a generator output here, so its gradient is checked too)."""
    torch.manual_seed(7)  # the same power-iteration start, where D is spectrally normalized
    x = x.detach().requires_grad_()
    out, n = gradient_normalize(D, x, *d_args, method=method, tau=TAU, eps=EPS, mode="full", dstep=dstep)
    half = x.shape[0] // 2
    loss = torch.relu(1 - out[:half]).mean() + torch.relu(1 + out[half:]).mean() + 0.1 * n.square().mean()
    params = [p for p in D.parameters() if p.requires_grad]
    return list(torch.autograd.grad(loss, [*params, x]))


@pytest.mark.parametrize("dstep", OPTIMIZED_DSTEPS)
@pytest.mark.parametrize("net", list(DSTEP_NETS))
@pytest.mark.parametrize("method", ["gn", "gran", "pgn", "pgn-grad", "gn0"])
def test_every_optimized_d_step_equals_the_reference_double_backward(dstep, net, method):
    build, shape = DSTEP_NETS[net]
    torch.manual_seed(0)
    D = build().double()
    x = torch.randn(6, *shape, dtype=torch.float64)
    state = {k: v.clone() for k, v in D.state_dict().items()}
    want = _d_step_gradients(D, x, method, REFERENCE_DSTEP)
    D.load_state_dict(state)  # the power iteration's vectors as the reference found them
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to the reference would pass without testing anything
        got = _d_step_gradients(D, x, method, dstep)
    assert_same_gradients(got, want)


@pytest.mark.parametrize("dstep", OPTIMIZED_DSTEPS)
@pytest.mark.parametrize("method", ["gn", "gran", "pgn"])
def test_optimized_d_steps_pass_labels_through_and_differentiate_the_embedding(dstep, method):
    torch.manual_seed(1)
    D = LabelD().double()
    x = torch.randn(6, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    want = _d_step_gradients(D, x, method, REFERENCE_DSTEP, y)
    assert_same_gradients(_d_step_gradients(D, x, method, dstep, y), want)


class SmoothD(nn.Module):
    """Not piecewise linear (a softplus): the tangent D step must fall back to the reference."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 8), nn.Linear(8, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(nn.functional.softplus(self.a(x))).squeeze(-1)


def test_tangent_d_step_falls_back_to_the_reference_where_d_is_not_piecewise_linear():
    torch.manual_seed(2)
    D = SmoothD().double()
    x = torch.randn(6, 3, dtype=torch.float64)
    want = _d_step_gradients(D, x, "gn", REFERENCE_DSTEP)
    with pytest.warns(UserWarning, match="softplus.*double-backward"):
        got = _d_step_gradients(D, x, "gn", "tangent")
    assert_same_gradients(got, want)
    assert_same_gradients(_d_step_gradients(D, x, "gn", "tangent"), want)  # remembered: no second warning


def test_tangent_d_step_under_bf16_autocast_is_close_to_the_reference():
    torch.manual_seed(3)
    D = ConvD()
    x = torch.randn(8, 2, 6, 6)
    grads = {}
    for dstep in (REFERENCE_DSTEP, "tangent"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            grads[dstep] = _d_step_gradients(D, x, "gn", dstep)
    for a, b in zip(grads["tangent"], grads[REFERENCE_DSTEP], strict=True):
        assert a.dtype == b.dtype == torch.float32
        assert (a - b).norm() <= 0.05 * b.norm()  # bf16 rounding in another order, not another formula


def test_unknown_dstep_raises_config_error():
    D, _, x, _ = make_setting("mlp")
    with pytest.raises(ConfigError, match="D-step implementation"):
        gradient_normalize(D, x, dstep="nope")
    with pytest.raises(ConfigError, match="D-step implementation"):
        GradNormD(D, dstep="nope")


CONDITIONAL_DSTEP_NETS = {  # the shipped projection discriminators, D(x, y)
    "digits-cnn-cond": ({"resolution": 16, "channels": 1}, (1, 16, 16)),
    "cgan-pd": ({"resolution": 32}, (3, 32, 32)),
    "biggan": ({"resolution": 32}, (3, 32, 32)),
    "mlp2d-cond": ({"num_classes": 8, "width": 0.0625}, (2,)),
}


@pytest.mark.parametrize("dstep", OPTIMIZED_DSTEPS)
@pytest.mark.parametrize("net", list(CONDITIONAL_DSTEP_NETS))
def test_optimized_d_steps_equal_the_reference_on_the_projection_discriminators(dstep, net):
    """The projection term ⟨embed(y), φ(x)⟩ is linear in x with a factor that depends on the weights: the
    tangent step must differentiate the embedding through it as the double backward does."""
    from lipgan.nets import build_gan

    options, shape = CONDITIONAL_DSTEP_NETS[net]
    torch.manual_seed(4)
    D = build_gan(net, **options).D.double()
    x = torch.randn(4, *shape, dtype=torch.float64)
    y = torch.tensor([0, 3, 3, 7])
    want = _d_step_gradients(D, x, "gn", REFERENCE_DSTEP, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback: the tangent step itself is under test
        assert_same_gradients(_d_step_gradients(D, x, "gn", dstep, y), want)
