"""Constraints on a class-conditional D (docs/methods.md §2.12): every per-sample quantity is the one of
`D_y(x) = D(x, y)` with the sample's own label, the gradient is taken w.r.t. x only, and the generator
mode stays exact with labels."""

from __future__ import annotations

import pytest
import torch

from lipgan.constraints.critic import build_critic, with_labels
from lipgan.constraints.gradnorm import gradient_normalize_with_raw
from lipgan.constraints.gradnorm_methods import GRADNORM_METHODS
from lipgan.constraints.penalty import gradient_penalty, site_labels
from lipgan.nets import build_gan

CLASSES = 4
BATCH = 6


@pytest.fixture
def pair():
    torch.manual_seed(3)
    return build_gan("mlp2d-cond", num_classes=CLASSES, width=0.0625, activation="leaky_relu")


def _inputs(dtype=torch.float64):
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(BATCH, 2, generator=gen, dtype=dtype)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    return x, y


def test_projection_discriminator_is_psi_of_phi_plus_the_embedded_label_inner_product(pair):
    D = pair.D.double()
    x, y = _inputs()
    features = D.phi(x)
    expected = D.psi(features).reshape(-1) + (D.embed(y) * features).sum(1)
    torch.testing.assert_close(D(x, y), expected, rtol=1e-12, atol=0)


def test_different_labels_give_different_scores_and_samples(pair):
    x, _ = _inputs(torch.float32)
    scores = [pair.D(x, torch.full((BATCH,), k)) for k in range(CLASSES)]
    assert all(not torch.allclose(scores[0], s) for s in scores[1:])
    z = torch.randn(BATCH, pair.G.z_dim)
    assert not torch.allclose(
        pair.G(z, torch.zeros(BATCH, dtype=torch.long)), pair.G(z, torch.ones(BATCH, dtype=torch.long))
    )


@pytest.mark.parametrize("method", ["gn", "gran", "pgn"])
def test_conditional_output_and_input_gradient_equal_the_per_sample_formula(pair, method):
    D = pair.D.double()
    x, y = _inputs()
    critic = build_critic(D, {"gradnorm": method})
    x_batch = x.clone().requires_grad_(True)
    out = critic(x_batch, y=y).out
    (grad_batch,) = torch.autograd.grad(out.sum(), x_batch)
    formula = GRADNORM_METHODS.get(method)
    for i in range(BATCH):
        # sample i alone, through the D of its own class, with the formula written out
        xi = x[i : i + 1].clone().requires_grad_(True)
        D_i = with_labels(D, y[i : i + 1])
        f = D_i(xi).reshape(1)
        (g,) = torch.autograd.grad(f.sum(), xi, create_graph=True)
        expected = formula.normalize(f, formula.norm(f, g), 1.2, 0.1)
        (expected_grad,) = torch.autograd.grad(expected.sum(), xi)
        torch.testing.assert_close(out[i : i + 1], expected.detach(), rtol=1e-12, atol=0)
        torch.testing.assert_close(grad_batch[i : i + 1], expected_grad, rtol=1e-10, atol=1e-14)


def test_the_labels_reach_the_discriminator_not_a_default_class(pair):
    D = pair.D.double()
    x, y = _inputs()
    with_y = gradient_normalize_with_raw(D, x, y, method="gn").out
    shifted = gradient_normalize_with_raw(D, x, (y + 1) % CLASSES, method="gn").out
    assert (with_y - shifted).abs().max() > 1e-3


@pytest.mark.parametrize("method", ["gn", "gran", "pgn"])
def test_generator_mode_equals_full_mode_with_labels(pair, method):
    """G's gradient through the critic: the fast path's is the double backward's (§2.8), with labels."""
    D = pair.D.double()
    G = pair.G.double()
    x, y = _inputs()
    z = torch.randn(BATCH, G.z_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    critic = build_critic(D, {"gradnorm": method})
    grads = {}
    for mode in ("full", "generator"):
        G.zero_grad()
        out = critic(G(z, y), mode=mode, y=y).out
        out.sum().backward()
        grads[mode] = (out.detach(), [p.grad.clone() for p in G.parameters()])
    torch.testing.assert_close(grads["generator"][0], grads["full"][0], rtol=1e-12, atol=0)
    for g_fast, g_full in zip(grads["generator"][1], grads["full"][1]):
        torch.testing.assert_close(g_fast, g_full, rtol=1e-6, atol=1e-12)


def test_penalty_scores_each_site_with_its_labels(pair):
    D = pair.D.double()
    x, y = _inputs()
    fake = x.flip(0) + 0.3
    y_fake = (y + 2) % CLASSES
    assert torch.equal(site_labels("interpolates", y, y_fake), y)
    assert torch.equal(site_labels("fake", y, y_fake), y_fake)
    assert torch.equal(site_labels("real+fake", y, y_fake), torch.cat([y, y_fake]))
    assert site_labels("real", None, None) is None
    # R2 at the fakes equals the mean squared input-gradient norm of D_{y_fake}, written out
    points = fake.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(D(points, y_fake).sum(), points)
    expected = g.norm(dim=1).square().mean()
    got = gradient_penalty(D, x, fake, center=0.0, at="fake", y_real=y, y_fake=y_fake)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)
    wrong = gradient_penalty(D, x, fake, center=0.0, at="fake", y_real=y, y_fake=y)
    assert (got - wrong).abs() > 1e-6
