"""Input-gradient probes (GraN Fig. 3, 4), the loss domain (LipReg Fig. 1), value surfaces (GN Fig. 3)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lipgan.analysis import PROBES, make_context
from lipgan.analysis.domain import psi_interval, read_history
from lipgan.analysis.grad_probes import FD_DELTAS
from lipgan.analysis.surface import grid_extent, grid_points
from lipgan.losses import get_loss

K, EPS = 0.83, 0.1
GRAN = {"gradnorm": "gran", "tau": 1 / K, "eps": EPS}


class FlatOutput(nn.Module):
    """A network whose ``[B, 1]`` output is returned as ``[B]``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(x.shape[0])


def mlp_critic(activation: type[nn.Module], d_in: int = 5, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Linear(d_in, 32), activation(), nn.Linear(32, 32), activation(), nn.Linear(32, 1)]
    return FlatOutput(nn.Sequential(*layers)).double()


def samples(n: int, d: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def raw_grad_norm(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    return grad.norm(dim=1)


def test_gran_gradient_norm_matches_closed_form(tmp_path):
    """GraN Eq. 19–20: for piecewise-linear f, ||∇ₓ g|| = K n²/(n² + ε) at every sample."""
    D = mlp_critic(nn.LeakyReLU)
    real, fake = samples(24, 5, 1), samples(24, 5, 2, scale=3.0)
    record = PROBES.get("grad-norms")(make_context(D, real, fake, tmp_path, loss="ns", constraint=GRAN))
    closed = record["gran_closed_form"]
    assert closed["max_rel_deviation"] <= 1e-5
    for name, x in (("real", real), ("fake", fake)):
        n = raw_grad_norm(D, x)
        expected = K * n**2 / (n**2 + EPS)
        assert_close(
            torch.tensor(record["normalized"][name], dtype=torch.float64), expected, rtol=1e-10, atol=0
        )
        assert_close(torch.tensor(record["raw"][name], dtype=torch.float64), n, rtol=1e-12, atol=0)
        assert_close(torch.tensor(closed[name], dtype=torch.float64), expected, rtol=1e-12, atol=0)
    assert record["normalized"]["real_summary"]["max"] < K


def test_closed_form_check_detects_a_smooth_network(tmp_path):
    """With tanh, ∇ₓ n ≠ 0, so the GraN closed form no longer holds: the reported deviation must show it."""
    D = mlp_critic(nn.Tanh)
    real, fake = samples(24, 5, 1), samples(24, 5, 2, scale=3.0)
    record = PROBES.get("grad-norms")(make_context(D, real, fake, tmp_path, constraint=GRAN))
    assert record["gran_closed_form"]["max_rel_deviation"] > 1e-3


def test_finite_differences_at_small_step_equal_gradient_norms(tmp_path):
    """GraN Fig. 4: as δ → 0, |h(x + δ n) − h(x)|/δ along the unit gradient tends to ||∇h||; h is linear on
    each piece, so at δ = 1e-4 the medians agree to high precision."""
    D = mlp_critic(nn.ReLU)
    real, fake = samples(32, 5, 3), samples(32, 5, 4, scale=2.0)
    ctx = make_context(D, real, fake, tmp_path, constraint=GRAN)
    grads = PROBES.get("grad-norms")(ctx)
    record = PROBES.get("finite-diff")(ctx)
    assert record["deltas"] == pytest.approx(FD_DELTAS)
    assert record["deltas"][0] == pytest.approx(1e-4) and record["deltas"][-1] == pytest.approx(10.0)
    for output in ("normalized", "raw"):
        for name in ("real", "fake"):
            at_zero = torch.tensor(grads[output][name], dtype=torch.float64).quantile(0.5)
            fd = torch.tensor(record[output][name]["median"][0], dtype=torch.float64)
            assert_close(fd, at_zero, rtol=1e-4, atol=0)
            bands = record[output][name]
            assert all(lo <= mid <= hi for lo, mid, hi in zip(bands["q10"], bands["median"], bands["q90"]))


def test_psi_interval_of_ns_loss_is_the_derivative_range():
    """LipReg Fig. 1: Ψ = L'(Ω). For NS, d_real = softplus(−r) has derivative −σ(−r), increasing in r;
    d_fake = softplus(f) has derivative σ(f)."""
    low, high = -1.5, 0.7
    psi = psi_interval(get_loss("ns"), low, high)
    bounds = torch.tensor([low, high], dtype=torch.float64)
    as_tensor = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
    assert_close(as_tensor(psi["d_real"]), -torch.sigmoid(-bounds), rtol=1e-12, atol=0)
    assert_close(as_tensor(psi["d_fake"]), torch.sigmoid(bounds), rtol=1e-12, atol=0)
    assert_close(as_tensor(psi["g_fake"]), -torch.sigmoid(-bounds), rtol=1e-12, atol=0)


def test_psi_interval_covers_an_interior_extremum():
    """COS: d_real = −cos(r − 1) has derivative sin(r − 1), maximal (1) at r = 1 + π/2, inside Ω."""
    psi = psi_interval(get_loss("cos"), 0.0, 4.0, n_points=100_001)
    assert psi["d_real"][1] == pytest.approx(1.0, abs=1e-9)
    assert psi["d_real"][0] == pytest.approx(
        float(torch.sin(torch.tensor(-1.0, dtype=torch.float64))), abs=1e-12
    )


def test_domain_probe_reads_history_and_measures_omega(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    rows = [{"step": 10, "d_out_min": -0.5, "d_out_max": 0.25}, {"step": 20, "g_loss": 1.0}]
    rows.append({"step": 30, "d_out_min": -1.0, "d_out_max": 2.0})
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    D = mlp_critic(nn.ReLU)
    real, fake = samples(16, 5, 5), samples(16, 5, 6)
    ctx = make_context(D, real, fake, tmp_path, loss="wgan", metrics_path=metrics)
    record = PROBES.get("domain")(ctx)
    with torch.no_grad():
        out_real, out_fake = D(real), D(fake)
    assert record["omega_real"] == pytest.approx([float(out_real.min()), float(out_real.max())], rel=1e-12)
    assert record["omega"] == pytest.approx(
        [float(torch.cat([out_real, out_fake]).min()), float(torch.cat([out_real, out_fake]).max())],
        rel=1e-12,
    )
    assert record["psi"] == {"d_real": [-1.0, -1.0], "d_fake": [1.0, 1.0], "g_fake": [-1.0, -1.0]}
    history = record["history"]
    assert history["step"] == [10, 30]
    assert history["omega_min"] == [-0.5, -1.0] and history["omega_max"] == [0.25, 2.0]
    assert len(read_history(metrics)) == 2
    assert (tmp_path / "plots" / "domain.png").stat().st_size > 1000


def test_value_surface_of_gn_critic_is_bounded(tmp_path):
    """GN Fig. 3 on 2-D data: the grid covers reals and fakes, and GN keeps |D̂| ≤ 1 everywhere (GN Thm 6)."""
    D = mlp_critic(nn.ReLU, d_in=2)
    real, fake = samples(40, 2, 7), samples(40, 2, 8, scale=2.0) + 1.0
    ctx = make_context(D, real, fake, tmp_path, constraint={"gradnorm": "gn"})
    record = PROBES.get("value-surface")(ctx)
    x0, x1, y0, y1 = record["extent"]
    both = torch.cat([real, fake])
    assert x0 < float(both[:, 0].min()) and x1 > float(both[:, 0].max())
    assert y0 < float(both[:, 1].min()) and y1 > float(both[:, 1].max())
    assert -1.0 <= record["normalized"]["min"] < record["normalized"]["max"] <= 1.0
    grid = grid_points(grid_extent(both), record["grid_side"], torch.float64)
    with torch.no_grad():
        raw = D(grid)
    assert record["raw"]["min"] == pytest.approx(float(raw.min()), rel=1e-12)
    assert record["raw"]["max"] == pytest.approx(float(raw.max()), rel=1e-12)
    assert (tmp_path / "plots" / "value-surface.png").stat().st_size > 1000
