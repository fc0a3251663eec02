"""Gradient penalties of docs/methods.md §4 against hand-computed values for linear and quadratic critics."""

from __future__ import annotations

import pytest
import torch

from lipgan.constraints.penalty import PENALTY_SITES, gradient_penalty
from lipgan.errors import ConfigError

SITES = ("interpolates", "real", "fake", "real+fake")
CENTERS = (0.0, 0.5, 1.0, 2.5)
EXACT = {"rtol": 1e-12, "atol": 1e-12}


def _batches(n_real=4, n_fake=4, shape=(2, 3, 3), seed=0):
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn((n_real, *shape), generator=gen, dtype=torch.float64)  # [B_r, C, H, W]
    fake = torch.randn((n_fake, *shape), generator=gen, dtype=torch.float64)  # [B_f, C, H, W]
    return real, fake


def _linear_critic(shape=(2, 3, 3), seed=1, column=False):
    """D(x) = w·x + b, returning [B] (or [B, 1]); its input gradient is w everywhere."""
    layer = torch.nn.Linear(int(torch.tensor(shape).prod()), 1, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(seed)))

    def critic(x):
        out = layer(x.flatten(1))  # [B, 1]
        return out if column else out.squeeze(1)

    return critic, layer


def test_registry_holds_the_four_sites():
    assert set(PENALTY_SITES.names()) == set(SITES)


@pytest.mark.parametrize("column", [False, True])
@pytest.mark.parametrize("at", SITES)
def test_linear_critic_penalty_is_exact(at, column):
    """∇ₓ(w·x + b) = w, so every site gives (||w|| − c)²."""
    critic, layer = _linear_critic(column=column)
    real, fake = _batches(n_fake=4 if at == "interpolates" else 6)
    w_norm = torch.linalg.vector_norm(layer.weight.detach())
    for center in CENTERS:
        got = gradient_penalty(critic, real, fake, center=center, at=at, generator=torch.Generator())
        torch.testing.assert_close(got, (w_norm - center) ** 2, **EXACT)


@pytest.mark.parametrize("at", SITES)
@pytest.mark.parametrize("center", CENTERS)
def test_linear_critic_gradient_reaches_weights(at, center):
    """d/dw (||w|| − c)² = 2 (||w|| − c) w / ||w||; the bias does not enter the input gradient."""
    critic, layer = _linear_critic()
    real, fake = _batches()
    gradient_penalty(critic, real, fake, center=center, at=at).backward()
    w = layer.weight.detach()
    w_norm = torch.linalg.vector_norm(w)
    torch.testing.assert_close(layer.weight.grad, 2 * (w_norm - center) * w / w_norm, **EXACT)
    assert layer.bias.grad is None or torch.count_nonzero(layer.bias.grad) == 0


def _quadratic_critic(shape=(5,), seed=2):
    """D(x) = Σ a ⊙ x², returning [B]; its input gradient is 2 a ⊙ x."""
    a = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    a.requires_grad_(True)
    return (lambda x: (a * x.square()).flatten(1).sum(1)), a


def _hand_penalty(points, a, center):
    """mean_i (||2 a ⊙ x_i|| − c)², computed row by row."""
    rows = [(torch.sqrt(((2 * a.detach() * x) ** 2).sum()) - center) ** 2 for x in points]
    return torch.stack(rows).mean()


@pytest.mark.parametrize("center", CENTERS)
def test_quadratic_critic_matches_hand_computation(center):
    critic, a = _quadratic_critic()
    real, fake = _batches(n_real=3, n_fake=5, shape=(5,))
    for at, points in (("real", real), ("fake", fake), ("real+fake", torch.cat([real, fake]))):
        got = gradient_penalty(critic, real, fake, center=center, at=at)
        torch.testing.assert_close(got, _hand_penalty(points, a, center), **EXACT)
    both = gradient_penalty(critic, real, fake, center=center, at="real+fake")
    halves = (_hand_penalty(real, a, center) + _hand_penalty(fake, a, center)) / 2
    assert not torch.isclose(both, halves, rtol=1e-6)  # a mean over all 8 samples, not a mean of means


@pytest.mark.parametrize("at", SITES)
def test_samples_are_detached(at):
    """The penalty trains D only: with an input gradient that depends on x, nothing reaches the samples."""
    critic, a = _quadratic_critic()
    real, fake = _batches(n_real=4, n_fake=4, shape=(5,))
    real.requires_grad_(True)
    fake.requires_grad_(True)
    gradient_penalty(critic, real, fake, at=at).backward()
    assert real.grad is None and fake.grad is None
    assert a.grad is not None and torch.count_nonzero(a.grad) == 5


def test_r1_gradient_reaches_parameters():
    """R1 = E||2 a ⊙ x||² has d/da = E[8 a ⊙ x²] (Mescheder et al. 2018)."""
    critic, a = _quadratic_critic()
    real, fake = _batches(n_real=3, n_fake=5, shape=(5,))
    gradient_penalty(critic, real, fake, center=0.0, at="real").backward()
    torch.testing.assert_close(a.grad, (8 * a.detach() * real.square()).mean(0), **EXACT)


def test_zero_gradient_critic_gives_finite_zero_penalty():
    critic, layer = _linear_critic()
    with torch.no_grad():
        layer.weight.zero_()
    real, fake = _batches()
    penalty = gradient_penalty(critic, real, fake, center=0.0, at="real+fake")
    penalty.backward()
    torch.testing.assert_close(penalty, torch.zeros((), dtype=torch.float64), rtol=0.0, atol=0.0)
    torch.testing.assert_close(layer.weight.grad, torch.zeros_like(layer.weight), rtol=0.0, atol=0.0)


def _recording_critic(seen):
    def critic(x):
        seen.append(x.detach().clone())
        return x.flatten(1).sum(1)

    return critic


def test_interpolation_is_per_sample_and_reproducible():
    """x̂ = ε x_r + (1 − ε) x_f with one ε ~ U(0,1) per sample, drawn from the given generator."""
    real, fake = _batches(n_real=6, n_fake=6)
    seen = []
    gradient_penalty(
        _recording_critic(seen), real, fake, at="interpolates", generator=torch.Generator().manual_seed(7)
    )
    gradient_penalty(
        _recording_critic(seen), real, fake, at="interpolates", generator=torch.Generator().manual_seed(7)
    )
    assert len(seen) == 2
    torch.testing.assert_close(seen[0], seen[1], rtol=0.0, atol=0.0)
    eps = ((seen[0] - fake) / (real - fake)).flatten(1)  # [B, C*H*W], constant along each row
    torch.testing.assert_close(eps, eps[:, :1].expand_as(eps), rtol=1e-9, atol=1e-9)
    per_sample = eps[:, 0]
    assert ((per_sample > 0) & (per_sample < 1)).all()
    assert torch.unique(per_sample).numel() == 6
    expected_eps = torch.rand((6, 1, 1, 1), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    torch.testing.assert_close(per_sample, expected_eps.flatten(), rtol=1e-9, atol=1e-9)


def test_real_plus_fake_is_one_forward():
    real, fake = _batches(n_real=3, n_fake=5)
    seen = []
    gradient_penalty(_recording_critic(seen), real, fake, at="real+fake")
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], torch.cat([real, fake]), rtol=0.0, atol=0.0)


def test_unknown_site_lists_valid_names():
    critic, _ = _linear_critic()
    real, fake = _batches()
    with pytest.raises(ConfigError, match="unknown penalty site 'mixed'.*interpolates"):
        gradient_penalty(critic, real, fake, at="mixed")
