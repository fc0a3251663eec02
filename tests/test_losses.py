"""Losses of docs/methods.md §5 against their table rows, domain scaling (LipReg Eq. 11) and its α -> 0
limit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lipgan.errors import ConfigError
from lipgan.losses import LOSSES, TERM_NAMES, get_loss, loss_derivatives


def _softplus(x):
    return np.log1p(np.exp(x))


def _relu(x):
    return np.maximum(x, 0.0)


# docs/methods.md §5.1, written independently with numpy: (d_real(r), d_fake(f), g_fake(f)), reals pushed up.
TABLE = {
    "minimax": (lambda r: _softplus(-r), lambda f: _softplus(f), lambda f: -_softplus(f)),
    "ns": (lambda r: _softplus(-r), lambda f: _softplus(f), lambda f: _softplus(-f)),
    "wgan": (lambda r: -r, lambda f: f, lambda f: -f),
    "hinge": (lambda r: _relu(1 - r), lambda f: _relu(1 + f), lambda f: -f),
    "soft-hinge": (lambda r: _softplus(1 - r), lambda f: _softplus(1 + f), lambda f: -f),
    "ls": (lambda r: (r - 1) ** 2, lambda f: f**2, lambda f: (f - 1) ** 2),
    "ls0": (lambda r: (r - 1) ** 2, lambda f: (f + 1) ** 2, lambda f: f**2),
    "cos": (lambda r: -np.cos(r - 1), lambda f: -np.cos(f + 1), lambda f: -np.cos(f - 1)),
    "exp": (lambda r: np.exp(-r), lambda f: np.exp(f), lambda f: np.exp(-f)),
}

_SIG1 = 1.0 / (1.0 + math.exp(-1.0))  # σ(1)
# L'(0) of each term, by hand: (d_real'(0), d_fake'(0), g_fake'(0)).
SLOPE_AT_ZERO = {
    "minimax": (-0.5, 0.5, -0.5),
    "ns": (-0.5, 0.5, -0.5),
    "wgan": (-1.0, 1.0, -1.0),
    "hinge": (-1.0, 1.0, -1.0),
    "soft-hinge": (-_SIG1, _SIG1, -1.0),
    "ls": (-2.0, 0.0, -2.0),
    "ls0": (-2.0, 2.0, 0.0),
    "cos": (-math.sin(1.0), math.sin(1.0), -math.sin(1.0)),
    "exp": (-1.0, 1.0, -1.0),
}

POINTS = np.array([-2.0, -0.5, 0.0, 0.3, 1.7])
FAKE_POINTS = np.array([-1.3, -0.2, 0.1, 0.6, 2.2, 0.9])
TIGHT = {"rtol": 1e-12, "atol": 1e-12}


def _t(a):
    return torch.tensor(a, dtype=torch.float64)


def test_registry_holds_the_nine_losses():
    assert set(LOSSES.names()) == set(TABLE)
    assert len(LOSSES) == 9


@pytest.mark.parametrize("name", sorted(TABLE))
def test_terms_equal_table_row(name):
    loss = get_loss(name)
    for term_name, expected in zip(TERM_NAMES, TABLE[name]):
        got = getattr(loss, term_name)(_t(POINTS))
        torch.testing.assert_close(got, _t(expected(POINTS)), **TIGHT)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_batch_losses_are_means_of_terms(name):
    loss = get_loss(name)
    real_term, fake_term, g_term = TABLE[name]
    expected_d = real_term(POINTS).mean() + fake_term(FAKE_POINTS).mean()
    expected_g = g_term(FAKE_POINTS).mean()
    torch.testing.assert_close(loss.d_loss(_t(POINTS), _t(FAKE_POINTS)), _t(expected_d), **TIGHT)
    torch.testing.assert_close(loss.g_loss(_t(FAKE_POINTS)), _t(expected_g), **TIGHT)
    column_d = loss.d_loss(_t(POINTS).unsqueeze(1), _t(FAKE_POINTS).unsqueeze(1))  # [B, 1] outputs
    torch.testing.assert_close(column_d, _t(expected_d), **TIGHT)
    torch.testing.assert_close(loss.g_loss(_t(FAKE_POINTS).unsqueeze(1)), _t(expected_g), **TIGHT)


def test_reals_pushed_up_fakes_down():
    """Descending d_loss raises real outputs and lowers fake outputs at 0 (docs/methods.md §1.2)."""
    for name in TABLE:
        slopes = loss_derivatives(get_loss(name), [0.0])
        assert slopes["d_real"].item() < 0, name
        assert slopes["d_fake"].item() >= 0, name


@pytest.mark.parametrize("alpha", [0.5, 2.0])
@pytest.mark.parametrize("name", sorted(TABLE))
def test_domain_scaling_definition(name, alpha):
    """L_α(ω) = L(α ω) / α (LipReg Eq. 11), for every term."""
    loss = get_loss(name, domain_scale=alpha)
    assert loss.domain_scale == alpha
    for term_name, expected in zip(TERM_NAMES, TABLE[name]):
        got = getattr(loss, term_name)(_t(POINTS))
        torch.testing.assert_close(got, _t(expected(alpha * POINTS) / alpha), **TIGHT)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_derivatives_match_finite_differences_of_table(name):
    step = 1e-6
    slopes = loss_derivatives(get_loss(name, domain_scale=0.7), _t(POINTS))
    for term_name, expected in zip(TERM_NAMES, TABLE[name]):
        central = (expected(0.7 * (POINTS + step)) - expected(0.7 * (POINTS - step))) / (2 * step * 0.7)
        torch.testing.assert_close(slopes[term_name], _t(central), rtol=1e-7, atol=1e-8)


def test_derivatives_work_under_no_grad_and_keep_shape():
    omega = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64).reshape(2, 3)
    with torch.no_grad():
        slopes = loss_derivatives(get_loss("ls"), omega)
    torch.testing.assert_close(slopes["d_real"], 2 * (omega - 1), **TIGHT)
    torch.testing.assert_close(slopes["d_fake"], 2 * omega, **TIGHT)
    assert not slopes["g_fake"].requires_grad


@pytest.mark.parametrize("name", sorted(TABLE))
def test_tiny_alpha_is_finite_in_float32(name):
    """α = 1e-25 (LipReg's smallest): values and gradients finite in float32, gradient = L'(0)."""
    alpha = 1e-25
    loss = get_loss(name, domain_scale=alpha)
    omega = torch.linspace(-100.0, 100.0, 41, dtype=torch.float32)
    for term_name, term, slope in zip(TERM_NAMES, TABLE[name], SLOPE_AT_ZERO[name]):
        point = omega.clone().requires_grad_(True)
        value = getattr(loss, term_name)(point)
        (grad,) = torch.autograd.grad(value.mean(), point)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all(), term_name
        expected_value = term(np.zeros(1)) / alpha + slope * omega.double().numpy()  # first-order Taylor
        torch.testing.assert_close(value.double(), _t(expected_value), rtol=1e-6, atol=1e-5)
        torch.testing.assert_close(grad * len(omega), torch.full_like(omega, slope), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_slope_tends_to_slope_at_zero(name):
    """As α -> 0, L_α'(ω) = L'(α ω) -> L'(0) (LipReg §4); |error| ≤ max|L''| · α |ω| with max|L''| < 2.5."""
    omega = torch.linspace(-3.0, 3.0, 13, dtype=torch.float64)
    for alpha in (1e-2, 1e-4, 1e-8):
        slopes = loss_derivatives(get_loss(name, domain_scale=alpha), omega)
        for term_name, slope in zip(TERM_NAMES, SLOPE_AT_ZERO[name]):
            limit = torch.full_like(omega, slope)
            torch.testing.assert_close(slopes[term_name], limit, rtol=0.0, atol=2.5 * alpha * 3.0)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_slope_at_tiny_alpha_is_exact_in_float64(name):
    omega = torch.linspace(-100.0, 100.0, 21, dtype=torch.float64)
    slopes = loss_derivatives(get_loss(name, domain_scale=1e-25), omega)
    for term_name, slope in zip(TERM_NAMES, SLOPE_AT_ZERO[name]):
        torch.testing.assert_close(slopes[term_name], torch.full_like(omega, slope), rtol=1e-15, atol=1e-20)


def test_unscaled_slopes_differ_from_slope_at_zero():
    """Guards the α -> 0 tests: without scaling, the nonlinear losses' slopes at ω = 3 are far from L'(0)."""
    slopes = loss_derivatives(get_loss("ls"), [3.0])
    torch.testing.assert_close(slopes["d_real"], torch.tensor([4.0]), rtol=0.0, atol=1e-6)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown loss 'nsgan'.*soft-hinge"):
        get_loss("nsgan")


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf"), "1e-3", None, True])
def test_bad_domain_scale_raises(alpha):
    with pytest.raises(ConfigError, match="domain_scale"):
        get_loss("ns", domain_scale=alpha)
