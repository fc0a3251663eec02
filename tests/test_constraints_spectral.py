"""Spectral normalizations (docs/methods.md §3): sn, sn-strict, bsn, scaling, γ variants, state handling."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from lipgan.constraints.spectral import (
    SPECTRAL_VARIANTS,
    OutputScale,
    apply_spectral_norm,
    layer_sigmas,
    spectral_norm,
    spectral_parametrizations,
)
from lipgan.constraints.spectral_sigma import ConvGeometry, bsn_sigma, conv_operator_sigma, reshaped_sigma
from lipgan.errors import ConfigError

TIGHT = {"rtol": 1e-9, "atol": 1e-12}
VARIANTS = ["sn", "sn-strict", "bsn"]


@pytest.fixture(autouse=True)
def _one_thread_float64():
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
    torch.set_default_dtype(dtype)


def out_rows(weight: torch.Tensor, transposed: bool) -> torch.Tensor:
    """The weight as a matrix with the layer's output channels as rows (independent of the library)."""
    return (weight.transpose(0, 1) if transposed else weight).reshape(weight.shape[int(transposed)], -1)


def sigma(matrix: torch.Tensor) -> torch.Tensor:
    return torch.linalg.matrix_norm(matrix, ord=2)


def explicit_operator(apply, input_shape) -> torch.Tensor:
    """The matrix of a linear map, built column by column from the basis vectors of its input space."""
    n = math.prod(input_shape)
    basis = torch.eye(n).reshape(n, *input_shape)  # [n, C, H, W]
    return apply(basis).reshape(n, -1).T  # [out, n]


LAYERS = {
    "linear": (lambda: nn.Linear(7, 4, bias=False), False),
    "conv": (lambda: nn.Conv2d(3, 4, 3, padding=1, bias=False), False),
    "convT": (lambda: nn.ConvTranspose2d(3, 5, 4, stride=2, padding=1, bias=False), True),
}


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_sn_divides_by_reshaped_sigma(kind, scale):
    make, transposed = LAYERS[kind]
    layer = make()
    raw = layer.weight.detach().clone()
    spectral_norm(layer, "sn", scale=scale, n_power_iterations=200)
    normalized = layer.weight
    assert_close(sigma(out_rows(normalized, transposed)), torch.tensor(scale), **TIGHT)
    assert_close(normalized, scale * raw / sigma(out_rows(raw, transposed)), **TIGHT)
    assert_close(reshaped_sigma(raw, transposed), sigma(out_rows(raw, transposed)), **TIGHT)


def test_sn_one_step_per_forward_converges():
    layer = nn.Conv2d(3, 4, 3, bias=False)
    spectral_norm(layer, "sn", scale=2.0)
    x = torch.randn(1, 3, 5, 5)
    for _ in range(300):
        layer(x)
    assert_close(sigma(out_rows(layer.weight, False)), torch.tensor(2.0), **TIGHT)


def test_train_step_is_one_power_iteration_and_eval_freezes():
    layer = spectral_norm(nn.Linear(6, 4, bias=False), "sn")
    parametrization = layer.parametrizations.weight[0]
    with torch.no_grad():
        parametrization.u.copy_(F.normalize(torch.randn(4), dim=0))
    u0, w = parametrization.u.clone(), layer.parametrizations.weight.original.detach()
    x = torch.randn(2, 6)
    layer.eval()
    out_a, out_b = layer(x), layer(x)
    assert torch.equal(parametrization.u, u0) and torch.equal(out_a, out_b)
    layer.train()
    layer(x)
    expected = F.normalize(w @ F.normalize(w.T @ u0, dim=0), dim=0)
    assert_close(parametrization.u, expected, **TIGHT)
    assert (expected - u0).norm() > 1e-3


def make_cnn(bias: bool = True) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=bias),
        nn.ReLU(),
        nn.Conv2d(3, 4, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 1, bias=bias),
    )


def make_mlp() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(5, 8, bias=False),
        nn.ReLU(),
        nn.Linear(8, 6, bias=False),
        nn.ReLU(),
        nn.Linear(6, 1, bias=False),
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_eval_freezes_state_and_state_dict_round_trips(variant):
    x = torch.randn(3, 2, 5, 5)
    net = apply_spectral_norm(make_cnn(), variant, scale=1.3, example_input=x)
    for _ in range(3):
        net(x)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.eval()
    first, second = net(x), net(x)
    assert torch.equal(first, second)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    net.train()
    net(x)
    assert any(not torch.equal(state[k], v) for k, v in net.state_dict().items() if k.endswith(".u"))

    torch.manual_seed(123)
    twin = apply_spectral_norm(make_cnn(), variant, scale=1.3, example_input=x)
    twin.load_state_dict(state)
    twin.eval()
    assert torch.equal(twin(x), first)


def test_strict_input_shapes_are_recorded():
    x = torch.randn(2, 2, 5, 5)
    net = apply_spectral_norm(make_cnn(), "sn-strict", example_input=x)
    shapes = [p.input_shape for _, _, p in spectral_parametrizations(net)]
    assert shapes == [(2, 5, 5), (3, 3, 3), (36,)]
    assert [tuple(p.u.shape) for _, _, p in spectral_parametrizations(net)] == [
        (1, 2, 5, 5),
        (1, 3, 3, 3),
        (1,),
    ]


CONV_CASES = [  # (stride, padding, dilation, groups, transposed, output_padding)
    (1, 0, 1, 1, False, 0),
    (1, 1, 1, 1, False, 0),
    (2, 1, 1, 1, False, 0),
    (2, 0, 1, 1, False, 0),
    (1, 2, 2, 1, False, 0),
    (3, 1, 1, 2, False, 0),
    (1, 0, 1, 1, True, 0),
    (2, 1, 1, 1, True, 0),
    (2, 1, 1, 1, True, 1),
    (2, 0, 1, 2, True, 0),
]


def conv_case(case, weight):
    stride, padding, dilation, groups, transposed, output_padding = case
    if transposed:
        return lambda x: F.conv_transpose2d(
            x, weight, None, stride, padding, output_padding, groups, dilation
        )
    return lambda x: F.conv2d(x, weight, None, stride, padding, dilation, groups)


def case_weight(case) -> torch.Tensor:
    groups, transposed = case[3], case[4]
    return torch.randn(2, 4 // groups, 3, 3) if transposed else torch.randn(4, 2 // groups, 3, 3)


@pytest.mark.parametrize("case", CONV_CASES)
def test_operator_sigma_matches_explicit_matrix(case):
    weight = case_weight(case)
    expected = sigma(explicit_operator(conv_case(case, weight), (2, 5, 5)))
    stride, padding, dilation, groups, transposed, output_padding = case
    got = conv_operator_sigma(
        weight, (2, 5, 5), stride, padding, dilation, groups, transposed, output_padding, n_iter=2000
    )
    assert_close(got, expected, rtol=1e-8, atol=0.0)


@pytest.mark.parametrize("case", CONV_CASES)
def test_operator_adjoint_is_exact(case):
    weight = case_weight(case)
    geometry = ConvGeometry.build(weight.shape[2:], *case[:5], output_padding=case[5])
    x = torch.randn(1, 2, 6, 6)
    y = torch.randn_like(geometry.apply(x, weight))
    assert_close(
        (geometry.apply(x, weight) * y).sum(), (x * geometry.adjoint(y, weight, x.shape)).sum(), **TIGHT
    )


@pytest.mark.parametrize("scale", [0.7, 1.75])
@pytest.mark.parametrize("case", [CONV_CASES[2], CONV_CASES[4], CONV_CASES[8]])
def test_sn_strict_normalizes_operator_to_scale(case, scale):
    stride, padding, dilation, groups, transposed, output_padding = case
    layer_cls = nn.ConvTranspose2d if transposed else nn.Conv2d
    extra = {"output_padding": output_padding} if transposed else {}
    layer = layer_cls(2, 4, 3, stride, padding, dilation=dilation, groups=groups, bias=False, **extra)
    spectral_norm(layer, "sn-strict", scale=scale, input_shape=(2, 5, 5), n_power_iterations=1000)
    operator = explicit_operator(conv_case(case, layer.weight.detach()), (2, 5, 5))
    assert_close(sigma(operator), torch.tensor(scale), rtol=1e-8, atol=0.0)


def test_sn_strict_on_linear_is_reshaped():
    layer = spectral_norm(nn.Linear(5, 3), "sn-strict", scale=2.0, n_power_iterations=200)
    assert_close(sigma(layer.weight), torch.tensor(2.0), **TIGHT)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("case", [case for case in CONV_CASES if case[3] == 1])
def test_strict_norm_is_sandwiched_by_reshaped_norm(case, seed):
    """BSSN §4 (Tsuzuku 2018 Cor. 1, Fig. 20 ratio ≥ 1): ``σ(Ŵ) ≤ ||A_W|| ≤ √m·σ(Ŵ)``, where Ŵ is the kernel
    with its first weight dimension as rows (``c_out`` for a conv; ``c_in`` for a transposed conv, which is
    the adjoint of a conv with that kernel). Lower: an input equal to one interior patch maps it through Ŵ.
    Upper: every input pixel lies in at most ``m = ⌈kh/s⌉·⌈kw/s⌉`` patches (dilation 1) or ``kh·kw``.
    (Grouped convolutions are left out: their patch map is block-diagonal, below σ(Ŵ).)"""
    torch.manual_seed(seed)
    weight = case_weight(case)
    stride, dilation = case[0], case[2]
    patches = math.ceil(3 / stride) ** 2 if dilation == 1 else 9
    strict = sigma(explicit_operator(conv_case(case, weight), (2, 7, 7)))
    reshaped = sigma(weight.reshape(weight.shape[0], -1))
    assert reshaped <= strict * (1 + 1e-12)
    assert strict <= math.sqrt(patches) * reshaped * (1 + 1e-12)


@pytest.mark.parametrize("scale", [1.0, 1.6])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_bsn_divides_by_mean_of_both_reshapes(kind, scale):
    make, transposed = LAYERS[kind]
    layer = make()
    raw = layer.weight.detach().clone()
    if raw.dim() == 2:
        expected_sigma = sigma(raw)
    else:
        expected_sigma = (
            sigma(raw.reshape(raw.shape[0], -1)) + sigma(raw.transpose(0, 1).reshape(raw.shape[1], -1))
        ) / 2
    spectral_norm(layer, "bsn", scale=scale, n_power_iterations=300)
    assert_close(layer.weight, scale * raw / expected_sigma, **TIGHT)
    assert_close(bsn_sigma(raw), expected_sigma, **TIGHT)


def test_bsn_parameter_variance_theorem_3():
    """BSSN Thm 3 by Monte Carlo, N(0,1) kernel c_out=8, c_in=4, 3×3 (k² = 9 ≥ c_out/c_in = 2).
    Upper bound: ``2/(c_in·k² + c_out·k²)``. Lower bound, for Gaussians: Var = E[‖w‖²/σ_w²]/S with
    S = c_out·c_in·k², and by Cauchy–Schwarz E[‖w‖²/σ_w²] ≥ (E‖w‖)²/E[σ_w²]; E‖w‖ is the chi mean, and
    E[σ_w²] ≤ (E σ₁² + E σ₂²)/2 with E σ² ≤ (√m + √n)² + 1 (Gordon's bound on E σ, Var σ ≤ 1 by the
    Gaussian Poincaré inequality since σ is 1-Lipschitz)."""
    c_out, c_in, k, n_draws = 8, 4, 3, 2000
    size = c_out * c_in * k * k
    weights = torch.randn(n_draws, c_out, c_in, k, k)
    normalized = torch.stack([w / bsn_sigma(w) for w in weights]).reshape(n_draws, -1)
    variance = normalized.var(dim=0).mean()
    upper = 2 / (c_in * k * k + c_out * k * k)
    chi_mean = math.sqrt(2) * math.exp(math.lgamma((size + 1) / 2) - math.lgamma(size / 2))
    second_moments = [
        (math.sqrt(a) + math.sqrt(b)) ** 2 + 1 for a, b in [(c_out, c_in * k * k), (c_in, c_out * k * k)]
    ]
    lower = chi_mean**2 / (size * sum(second_moments) / 2)
    assert lower <= variance <= upper


@pytest.mark.parametrize("k", [0.5, 2.0])
@pytest.mark.parametrize("make", [make_mlp, lambda: make_cnn(bias=False)], ids=["mlp", "cnn"])
@pytest.mark.parametrize("variant", ["sn", "bsn"])
def test_scale_k_scales_output_by_k_to_the_L(variant, make, k):
    """LipReg Eq. 3: with bias-free ReLU layers, scale ``k`` on all L layers multiplies f by ``k^L``."""
    torch.manual_seed(1)
    base = make()
    x = torch.randn(4, 5) if isinstance(base[0], nn.Linear) else torch.randn(4, 2, 5, 5)
    nets = []
    for scale in (1.0, k):
        torch.manual_seed(2)
        net = apply_spectral_norm(copy.deepcopy(base), variant, scale=scale)
        for _ in range(5):
            net(x)
        nets.append(net.eval())
    n_layers = len(list(spectral_parametrizations(nets[0])))
    assert_close(nets[1](x), k**n_layers * nets[0](x), **TIGHT)


def input_gradient(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    out = net(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


@pytest.mark.parametrize("activation", [nn.ReLU, lambda: nn.LeakyReLU(0.2)], ids=["relu", "leaky"])
def test_layer_scales_with_product_one_leave_f_unchanged(activation):
    """BSSN Prop. 2: per-layer constants ``c_i > 0`` with ``∏ c_i = 1`` change neither f nor ∇ₓf."""
    torch.manual_seed(3)
    base = nn.Sequential(nn.Linear(5, 8, bias=False), activation(), nn.Linear(8, 6, bias=False), activation())
    base.append(nn.Linear(6, 1, bias=False))
    x = torch.randn(6, 5)
    results = []
    for scales in [(1.0, 1.0, 1.0), (2.0, 0.25, 2.0), (0.5, 3.0, 2.0 / 3.0)]:
        net = copy.deepcopy(base)
        for layer, scale in zip([net[0], net[2], net[4]], scales, strict=True):
            spectral_norm(layer, "sn", scale=scale, n_power_iterations=100)
        results.append(input_gradient(net.eval(), x))
    for out, grad in results[1:]:
        assert_close(out, results[0][0], **TIGHT)
        assert_close(grad, results[0][1], **TIGHT)


def test_same_gamma_is_one_shared_parameter():
    """f(γ) = γ^L f(1) for a bias-free ReLU net, so ∂f/∂γ at γ = 1 is L·f."""
    net = apply_spectral_norm(make_mlp(), "sn", gamma="same")
    gammas = [p.gamma for _, _, p in spectral_parametrizations(net)]
    assert all(g is net.sn_gamma for g in gammas)
    assert sum(1 for name, _ in net.named_parameters() if "gamma" in name) == 1
    net.eval()
    out = net(torch.randn(1, 5)).sum()
    (grad,) = torch.autograd.grad(out, net.sn_gamma)
    assert_close(grad, 3 * out.detach(), **TIGHT)


def test_diff_gamma_is_one_parameter_per_layer():
    """Each layer's γ enters f linearly (ReLU is positively homogeneous), so ∂f/∂γ_i at γ_i = 1 is f."""
    net = apply_spectral_norm(make_mlp(), "bsn", gamma="diff")
    gammas = [p.gamma for _, _, p in spectral_parametrizations(net)]
    assert len({id(g) for g in gammas}) == 3 and not hasattr(net, "sn_gamma")
    net.eval()
    x = torch.randn(1, 5)
    out = net(x).sum()
    grads = torch.autograd.grad(out, gammas)
    for grad in grads:
        assert_close(grad, out.detach(), **TIGHT)
    with torch.no_grad():
        gammas[0].fill_(2.5)
        gammas[2].fill_(0.5)
    assert_close(net(x).sum(), 1.25 * out.detach(), **TIGHT)


@pytest.mark.parametrize("on_bias", [True, False], ids=["gamma_on_bias", "weights_only"])
def test_gamma_scales_the_bias_as_the_official_code_does_or_not(on_bias):
    """A layer with bias computes γ(W̄x + b) with `gamma_on_bias` (fjxmlzn/BSN), γW̄x + b without."""
    torch.manual_seed(4)
    layer = nn.Linear(5, 3)
    plain = copy.deepcopy(layer)
    net = apply_spectral_norm(
        nn.Sequential(layer), "sn", gamma="diff", n_power_iterations=50, gamma_on_bias=on_bias
    )
    net.eval()
    ((_, _, parametrization),) = list(spectral_parametrizations(net))
    with torch.no_grad():
        parametrization.gamma.fill_(2.5)
    x = torch.randn(4, 5, dtype=plain.weight.dtype)
    normalized = net[0].weight / 2.5  # W̄ = γ W/σ, so W̄/γ is W/σ
    bias = plain.bias * (2.5 if on_bias else 1.0)
    expected = 2.5 * x @ normalized.T + bias
    assert_close(net(x), expected, **TIGHT)
    assert torch.equal(net[0].bias, bias.detach()) if on_bias else torch.equal(net[0].bias, plain.bias)
    # the bias parametrization holds the layer's own γ: one parameter, not a copy
    assert sum(1 for p in net.parameters() if p is parametrization.gamma) == 1


def test_output_scale_multiplies_output_and_gradient():
    net = apply_spectral_norm(make_mlp(), "sn").eval()
    x = torch.randn(3, 5)
    out, grad = input_gradient(net, x)
    scaled_out, scaled_grad = input_gradient(OutputScale(net, 4.0), x)
    assert_close(scaled_out, 4.0 * out, **TIGHT)
    assert_close(scaled_grad, 4.0 * grad, **TIGHT)


def test_layer_sigmas_report_what_is_divided_by():
    x = torch.randn(2, 2, 5, 5)
    net = apply_spectral_norm(make_cnn(), "bsn", scale=1.5, example_input=x, n_power_iterations=300)
    net(x)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    rows = layer_sigmas(net, n_iter=500)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())  # a probe has no side effect
    assert [r["name"] for r in rows] == ["0", "2", "5"]
    assert [r["variant"] for r in rows] == ["bsn", "bsn", "sn"]  # BSN keeps SN on linear layers (BSSN §5.1)
    for row in rows:
        assert row["scale"] == 1.5 and row["gamma"] is None
        assert row["used"] == pytest.approx(row["bsn"], rel=1e-9)
        assert row["reshaped"] <= row["strict"] * (1 + 1e-9)


def test_config_errors():
    with pytest.raises(ConfigError, match="input shape"):
        spectral_norm(nn.Conv2d(2, 3, 3), "sn-strict")
    with pytest.raises(ConfigError, match="input shape"):
        apply_spectral_norm(make_cnn(), "sn-strict")
    with pytest.raises(ConfigError, match="does not fit"):
        spectral_norm(nn.Conv2d(2, 3, 3), "sn-strict", input_shape=(3, 5, 5))
    with pytest.raises(ConfigError, match="valid: bsn, sn, sn-strict"):
        apply_spectral_norm(make_mlp(), "snn")
    with pytest.raises(ConfigError, match="unknown spectral normalization"):
        spectral_norm(nn.Linear(2, 2), "strict")
    with pytest.raises(ConfigError, match="already spectrally normalized"):
        spectral_norm(spectral_norm(nn.Linear(2, 2)), "bsn")
    with pytest.raises(ConfigError, match="n_power_iterations"):
        spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(ConfigError, match="gamma mode"):
        apply_spectral_norm(make_mlp(), "sn", gamma="both")
    assert SPECTRAL_VARIANTS.names() == ["bsn", "sn", "sn-strict"]


def exact_sigma_fn(variant: str, layer: nn.Module):
    """σ(W) computed exactly and differentiably (SVD / explicit operator matrix), for each variant."""
    transposed = isinstance(layer, nn.ConvTranspose2d)
    if variant == "sn":
        return lambda w: sigma(out_rows(w, transposed))
    if variant == "bsn":
        return lambda w: (
            (sigma(w.reshape(w.shape[0], -1)) + sigma(w.transpose(0, 1).reshape(w.shape[1], -1))) / 2
        )
    conv = F.conv_transpose2d if transposed else F.conv2d
    return lambda w: sigma(explicit_operator(lambda x: conv(x, w, None, 2, 1), (3, 4, 4)))


@pytest.mark.parametrize("layer_cls", [nn.Conv2d, nn.ConvTranspose2d])
@pytest.mark.parametrize("variant", VARIANTS)
def test_gradient_matches_exact_normalization(variant, layer_cls):
    """With converged state, the gradient through ``σ = uᵀWv`` (u, v fixed) equals that of the exact
    ``s·W/σ(W)``, since ∂σ₁/∂W = u₁v₁ᵀ; two train-mode forwards can share one backward (cloned state)."""
    layer = layer_cls(3, 4, 3, stride=2, padding=1, bias=False)
    raw = layer.weight.detach().clone().requires_grad_(True)
    spectral_norm(layer, variant, scale=1.3, input_shape=(3, 4, 4), n_power_iterations=600)
    probe = torch.randn_like(raw)
    x = torch.randn(2, 3, 4, 4)
    (layer(x).sum() + layer(2 * x).sum() + (layer.weight * probe).sum()).backward()
    original = layer.parametrizations.weight.original
    normalized = 1.3 * raw / exact_sigma_fn(variant, layer)(raw)
    loss = conv_out(layer, normalized, x) + conv_out(layer, normalized, 2 * x) + (normalized * probe).sum()
    (expected,) = torch.autograd.grad(loss, raw)
    assert_close(original.grad, expected, rtol=1e-7, atol=1e-10)


def conv_out(layer: nn.Module, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    conv = F.conv_transpose2d if isinstance(layer, nn.ConvTranspose2d) else F.conv2d
    return conv(x, weight, None, 2, 1).sum()
