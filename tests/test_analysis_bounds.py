"""Analytic Lipschitz bounds of the architectures (GraN App. D) against exact norms and measured gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lipgan.analysis import PROBES, make_context
from lipgan.analysis.lipschitz_bound import GRAN_APP_D, L2_EXACT, architecture_bounds, empirical_grad_norms
from lipgan.constraints.spectral import OutputScale, apply_spectral_norm
from lipgan.nets import build_gan


def uniform_images(n: int, shape: tuple[int, ...], seed: int, dtype=torch.float32) -> torch.Tensor:
    return 2 * torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) - 1


def spectral_resnet_context(pooling: str, tmp_path):
    torch.manual_seed(0)
    D = build_gan("sngan-resnet", resolution=32, pooling=pooling).D
    real, fake = uniform_images(4, (3, 32, 32), 1), uniform_images(4, (3, 32, 32), 2)
    D = apply_spectral_norm(D, "sn", 1.0, example_input=real[:2])
    return make_context(D, real, fake, tmp_path, arch="sngan-resnet", constraint={"spectral": "sn"})


@pytest.mark.parametrize("pooling", ["sum", "avg"])
def test_sngan_resnet_32_bound_reproduces_gran_appendix_d(pooling, tmp_path):
    """GraN App. D: 4 residual blocks at 2 each, then sum pooling over the final 8×8 map: 2⁴·8·8 = 1024;
    average pooling counts 1 there: 2⁴ = 16. The exact ℓ2 accounting (2×2 average pools in the first two
    blocks halve them; a global sum/mean over 64 entries has norm 8 / 1/8) gives 1·1·2·2·8 = 32 / 0.5."""
    ctx = spectral_resnet_context(pooling, tmp_path)
    bounds = architecture_bounds(ctx, ("gran_app_d", "l2_assumed", "l2_certified"))
    paper = 2**4 * (8 * 8 if pooling == "sum" else 1)
    exact_l2 = (1 * 1 * 2 * 2) * (8 if pooling == "sum" else 1 / 8)
    assert paper == (1024 if pooling == "sum" else 16)
    assert bounds["gran_app_d"]["bound"] == pytest.approx(paper, rel=1e-12)
    assert bounds["l2_assumed"]["bound"] == pytest.approx(exact_l2, rel=1e-12)
    block_factors = [f for name, f in bounds["gran_app_d"]["factors"] if name.startswith("blocks.")]
    assert block_factors == [2.0, 2.0, 2.0, 2.0]
    measured = max(float(v.max()) for v in empirical_grad_norms(ctx).values())
    assert 0 < measured <= bounds["l2_certified"]["bound"]


@pytest.mark.parametrize(
    ("accounting", "kind", "expected"),
    [(L2_EXACT, "sum", 8.0), (L2_EXACT, "avg", 1 / 8), (GRAN_APP_D, "sum", 64.0), (GRAN_APP_D, "avg", 1.0)],
)
def test_global_pooling_factors(accounting, kind, expected):
    """The ℓ2 factor is the largest singular value of the pooling map (its Jacobian on an 8×8 map); the
    GraN App. D factor is that of the paper (64 for sum pooling) and never below the ℓ2 one."""
    pool = {"sum": lambda h: h.sum(dim=(2, 3)), "avg": lambda h: h.mean(dim=(2, 3))}[kind]
    jac = torch.autograd.functional.jacobian(pool, torch.zeros(1, 2, 8, 8, dtype=torch.float64))
    exact = float(torch.linalg.matrix_norm(jac.reshape(2, 128), ord=2))
    assert accounting.global_pool[kind](64) == pytest.approx(expected, rel=1e-12)
    assert GRAN_APP_D.global_pool[kind](64) >= exact * (1 - 1e-12)
    if accounting is L2_EXACT:
        assert expected == pytest.approx(exact, rel=1e-12)


def test_avg_pool_2x2_factor_is_its_operator_norm():
    jac = torch.autograd.functional.jacobian(
        lambda h: F.avg_pool2d(h, 2), torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    )
    exact = float(torch.linalg.matrix_norm(jac.reshape(9, 36), ord=2))
    assert L2_EXACT.avg_pool_2x2 == pytest.approx(exact, rel=1e-12)


def test_chain_bounds_hold_and_are_ordered(tmp_path):
    """On a spectrally normalized conv chain: measured ||∇ₓ f|| ≤ operator-norm bound ≤ certified bound,
    and the operator bound is the product of the measured per-layer operator norms."""
    torch.manual_seed(0)
    D = build_gan("digits-cnn", resolution=16, width=0.5).D.double()
    real, fake = (
        uniform_images(16, (1, 16, 16), 3, torch.float64),
        uniform_images(16, (1, 16, 16), 4, torch.float64),
    )
    D = apply_spectral_norm(D, "sn", 1.5, example_input=real[:2])
    ctx = make_context(
        D, real, fake, tmp_path, arch="digits-cnn", constraint={"spectral": "sn", "spectral_scale": 1.5}
    )
    record = PROBES.get("lipschitz-bound")(ctx)
    bounds = record["bounds"]
    n_layers = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in D.modules())
    assert bounds["gran_app_d"]["bound"] == pytest.approx(1.5**n_layers, rel=1e-12)
    operator, certified = bounds["l2_operator"]["bound"], bounds["l2_certified"]["bound"]
    assert 0 < record["empirical_max_grad_norm"] <= operator <= certified
    assert operator == pytest.approx(math.prod(f for _, f in bounds["l2_operator"]["factors"]), rel=1e-12)
    assert set(record["empirical"]) == {"real", "fake", "random"}
    assert (tmp_path / "plots" / "lipschitz-bound.png").stat().st_size > 1000


def test_output_scale_multiplies_the_bound_and_unknown_arch_has_none(tmp_path):
    torch.manual_seed(0)
    D = build_gan("mlp2d", width=0.1).D
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    plain = architecture_bounds(make_context(D, real, fake, tmp_path, arch="mlp2d"), ("l2_operator",))
    scaled_ctx = make_context(OutputScale(D, 0.83), real, fake, tmp_path, arch="mlp2d")
    scaled = architecture_bounds(scaled_ctx, ("l2_operator",))
    assert scaled["l2_operator"]["bound"] == pytest.approx(0.83 * plain["l2_operator"]["bound"], rel=1e-6)
    assert scaled["l2_operator"]["factors"][-1] == ("output scale K (SN†)", 0.83)
    unknown = architecture_bounds(make_context(D, real, fake, tmp_path, arch="my-net"))
    assert unknown["gran_app_d"]["bound"] is None and "my-net" in unknown["gran_app_d"]["reason"]
