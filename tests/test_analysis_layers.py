"""Per-layer probes of BSSN: parameter variance (Thm 3), operator/reshaped spectral-norm ratio (Fig. 20),
per-layer gradients (Fig. 2), the Eq. 2 ratio test (Fig. 3) and the cheap probes for training logs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lipgan.analysis import PROBES, build_critic, cheap_probe_scalars, make_context
from lipgan.analysis.layers import effective_weight_grads, trainable_weight_grads
from lipgan.constraints.spectral import apply_spectral_norm
from lipgan.constraints.spectral_sigma import bsn_sigma
from lipgan.losses import get_loss
from lipgan.nets import build_gan


def uniform(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return 2 * torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) - 1


class BiasFreeChain(nn.Module):
    """conv-LeakyReLU-conv-LeakyReLU-linear without biases: f is positively 1-homogeneous in every weight."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, bias=False),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4, 6, 4, stride=2, padding=1, bias=False),
            nn.LeakyReLU(0.2),
        )
        self.fc = nn.Linear(6 * 4 * 4, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1)).reshape(x.shape[0])


def chain_context(tmp_path, variant: str | None = "sn", loss: str = "wgan", constraint: dict | None = None):
    torch.manual_seed(0)
    D = BiasFreeChain().double()
    real, fake = uniform(8, (1, 8, 8), 1), uniform(8, (1, 8, 8), 2)
    if variant is not None:
        D = apply_spectral_norm(D, variant, 1.0, example_input=real[:2])
    return make_context(D, real, fake, tmp_path, loss=loss, constraint=constraint)


def test_bsn_parameter_variance_respects_theorem_3(tmp_path):
    """BSSN Thm 3: for i.i.d. symmetric kernels with k_w·k_h ≥ max(c_out/c_in, c_in/c_out),
    Var(w/σ_w) ≤ 2/(c_in·k + c_out·k). From below, σ of a random m×n matrix is about sqrt(v)(√m + √n)
    (Gordon / Bai–Yin), so the variance is close to 1/σ_w² for that σ."""
    torch.manual_seed(0)
    arch = "bssn-mnist"
    pair = build_gan(arch)
    D = pair.D.double()
    real = uniform(4, tuple(pair.G.out_shape), 1)
    D = apply_spectral_norm(D, "bsn", 1.0, example_input=real[:2])
    ctx = make_context(D, real, real, tmp_path, arch=arch, constraint={"spectral": "bsn"})
    rows = PROBES.get("param-variance")(ctx)["layers"]
    layers = dict(D.named_modules())
    checked = 0
    for row in rows:
        raw = layers[row["name"]].parametrizations.weight.original.detach()
        variance = float((raw / bsn_sigma(raw)).var(unbiased=False))
        assert row["variance_exact_sigma"] == pytest.approx(variance, rel=1e-10)
        if raw.dim() == 2:
            m, n = raw.shape
            bound, sigma_typical = 1 / max(m, n), math.sqrt(m) + math.sqrt(n)
        else:
            c_out, c_in, k = raw.shape[0], raw.shape[1], raw[0, 0].numel()
            bound = 2 / (c_in * k + c_out * k)
            sigma_typical = (
                math.sqrt(c_out) + math.sqrt(c_in * k) + math.sqrt(c_in) + math.sqrt(c_out * k)
            ) / 2
            assert row["hypothesis_holds"] == (k >= max(c_out / c_in, c_in / c_out))
        assert row["bound"] == pytest.approx(bound, rel=1e-12)
        if row["hypothesis_holds"]:
            checked += 1
            assert 0.95 / sigma_typical**2 <= variance <= bound
    assert checked >= 2


def test_sn_ratio_of_fresh_net_lies_within_tsuzuku_bounds(tmp_path):
    """BSSN Fig. 20: ||conv operator|| ≥ ||reshaped W|| (an output whose window lies inside the input sees
    exactly the reshaped kernel) and ≤ sqrt(∏⌈k/s⌉)·||reshaped W|| (Tsuzuku et al. 2018); k4 s2: 2."""
    torch.manual_seed(0)
    D = build_gan("digits-cnn", resolution=16).D
    real = 2 * torch.rand(4, 1, 16, 16) - 1
    rows = PROBES.get("sn-ratio")(make_context(D, real, real, tmp_path, arch="digits-cnn"))["layers"]
    assert len(rows) == sum(isinstance(m, nn.Conv2d) for m in D.modules()) == 2
    for row in rows:
        assert row["upper_bound"] == 2.0
        assert 1 - 1e-4 <= row["ratio"] <= row["upper_bound"] * (1 + 1e-6)
    assert (tmp_path / "plots" / "sn-ratio.png").stat().st_size > 1000


def test_operator_sigma_equals_svd_of_the_convolution_matrix(tmp_path):
    """The probe's operator norm is that of the convolution as a matrix on the layer's input size."""
    ctx = chain_context(tmp_path, variant=None)
    rows = PROBES.get("sn-ratio")(ctx)["layers"]
    layers = dict(ctx.D.named_modules())
    for row in rows:
        conv = layers[row["name"]]
        x0 = torch.zeros(1, *row["input_shape"], dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(
            lambda x, conv=conv: nn.functional.conv2d(x, conv.weight, None, conv.stride, conv.padding), x0
        )
        matrix = jac.reshape(-1, x0.numel())
        assert row["operator_sigma"] == pytest.approx(
            float(torch.linalg.matrix_norm(matrix, ord=2)), rel=1e-6
        )


def test_layer_grads_follow_homogeneity_and_leave_d_intact(tmp_path):
    """f is 1-homogeneous in each normalized weight W̄ of a bias-free LeakyReLU chain and the WGAN D loss
    is linear in f, so ⟨∂L/∂W̄_l, W̄_l⟩ = L_D for every layer. The trainable-weight gradients equal autograd
    w.r.t. ``parametrizations.weight.original``; D's output and mode are unchanged by the probe."""
    ctx = chain_context(tmp_path)
    D, loss = ctx.D.eval(), get_loss("wgan")
    before = D(ctx.real).detach()
    originals = [m.parametrizations.weight.original for m in (D.features[0], D.features[2], D.fc)]
    d_loss = loss.d_loss(D(ctx.real), D(ctx.fake))
    expected = torch.stack([g.norm() for g in torch.autograd.grad(d_loss, originals)])
    d_loss = float(d_loss.detach())
    D.train()
    _, weights, grads = effective_weight_grads(ctx)
    for weight, grad in zip(weights, grads):
        assert float((weight * grad).sum()) == pytest.approx(d_loss, rel=1e-10)
    record = PROBES.get("layer-grads")(ctx)
    assert D.training
    assert record["layers"] == ["features.0", "features.2", "fc"]
    assert record["weight_kind"] == ["original"] * 3
    assert_close(torch.tensor(record["grad_norm"], dtype=torch.float64), expected, rtol=1e-10, atol=0)
    assert_close(D.eval()(ctx.real).detach(), before, rtol=0, atol=0)
    names, kinds, _ = trainable_weight_grads(ctx)
    assert names == record["layers"] and kinds == record["weight_kind"]


def test_unnormalized_net_has_equal_trainable_and_effective_gradients(tmp_path):
    ctx = chain_context(tmp_path, variant=None, loss="hinge", constraint={"gradnorm": "gn"})
    record = PROBES.get("layer-grads")(ctx)
    assert record["weight_kind"] == ["weight"] * 3
    assert record["grad_norm"] == pytest.approx(record["grad_norm_effective"], rel=1e-12)
    assert all(g > 0 for g in record["grad_norm"])


def test_eq2_ratios_are_invariant_under_prop2_rescaling(tmp_path):
    """BSSN Prop. 2: scaling layer 1 by c and layer 2 by 1/c leaves D unchanged; both sides of Eq. 2 for the
    pair (2, 1) then grow by c², so their quotient is invariant."""
    ctx = chain_context(tmp_path, variant=None)
    first = PROBES.get("eq2-ratio")(ctx)
    before = ctx.D(ctx.real).detach()
    c = 2.0
    with torch.no_grad():
        ctx.D.features[0].weight.mul_(c)
        ctx.D.features[2].weight.div_(c)
    assert_close(ctx.D(ctx.real).detach(), before, rtol=1e-12, atol=1e-14)
    second = PROBES.get("eq2-ratio")(ctx)
    old, new = first["pairs_consecutive"][0], second["pairs_consecutive"][0]
    assert (old["i"], old["j"]) == (2, 1)
    assert new["grad_ratio"] == pytest.approx(c**2 * old["grad_ratio"], rel=1e-10)
    assert new["inv_sigma_ratio"] == pytest.approx(c**2 * old["inv_sigma_ratio"], rel=1e-5)
    assert len(first["pairs_first"]) == 2 and first["pairs_first"][1]["i"] == 3


def test_cheap_probe_scalars_match_direct_computation_without_side_effects(tmp_path):
    ctx = chain_context(tmp_path, loss="hinge", constraint={"gradnorm": "gran", "tau": 1.2, "eps": 0.1})
    D = ctx.D.train()
    buffers = {k: v.clone() for k, v in D.named_buffers()}
    critic = build_critic(D, ctx.constraint)
    scalars = cheap_probe_scalars(D, critic, ctx.loss, ctx.real, ctx.fake)
    assert D.training and all(p.grad is None for p in D.parameters())
    for name, value in D.named_buffers():
        assert_close(value, buffers[name], rtol=0, atol=0)
    x = ctx.real.clone().requires_grad_(True)
    D.eval()
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    assert scalars["probe/grad_norm_real_mean"] == pytest.approx(
        float(grad.flatten(1).norm(dim=1).mean()), rel=1e-10
    )
    out_real, out_fake = critic(ctx.real).out.detach(), critic(ctx.fake).out.detach()
    assert scalars["probe/out_fake_max"] == pytest.approx(float(out_fake.max()), rel=1e-10)
    d_loss = ctx.loss.d_loss(out_real, out_fake)
    assert scalars["probe/d_loss"] == pytest.approx(float(d_loss), rel=1e-10)
    d_loss = ctx.loss.d_loss(critic(ctx.real).out, critic(ctx.fake).out)
    (g_fc,) = torch.autograd.grad(d_loss, [D.fc.parametrizations.weight.original])
    assert scalars["probe/layer_grad/fc"] == pytest.approx(float(g_fc.norm()), rel=1e-8)
    assert {k for k in scalars if k.startswith("probe/layer_grad/")} == {
        "probe/layer_grad/features.0",
        "probe/layer_grad/features.2",
        "probe/layer_grad/fc",
    }
