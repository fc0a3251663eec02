"""The D and G updates of lipgan.training.steps, on tiny float64 networks: the consistency term's exact value
on the constrained output (docs/methods.md §6.2), and the generator step's mode (docs/methods.md §2.8):
which mode the critic runs in, whether a double backward happens, and that both modes give G the same
gradient."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lipgan.constraints.critic import build_critic
from lipgan.losses import get_loss
from lipgan.training.augment import consistency_augment
from lipgan.training.config import Config
from lipgan.training.steps import (
    REGULARIZERS,
    StepParts,
    active_regularizers,
    discriminator_step,
    generator_step,
    scaled_step,
)

CR_WEIGHT, CR_SHIFT = 2.5, 0.25  # not the defaults, so an ignored setting shows


class TinyG(nn.Module):
    """z [B, 3] -> images [B, 1, 8, 8], piecewise linear."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.LeakyReLU(0.2), nn.Linear(16, 64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 8, 8)


def tiny_d() -> nn.Module:
    """[B, 1, 8, 8] -> [B, 1], piecewise linear (convolutions, LeakyReLU, linear head)."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(4, 4, 4, stride=2, padding=1),  # [B, 4, 4, 4]
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(64, 1),
    )


def make_parts(cfg: Config, D: nn.Module | None = None, G: nn.Module | None = None) -> StepParts:
    """Step parts on float64 nets, with lr-0 SGD so that the networks stay as they are."""
    torch.manual_seed(0)
    D = (D if D is not None else tiny_d()).double()
    G = (G if G is not None else TinyG()).double()
    return StepParts(
        cfg=cfg,
        G=G,
        D=D,
        d_net=D,
        critic=build_critic(D, cfg.constraint),
        g_critic=build_critic(D, cfg.constraint),
        loss=get_loss(cfg.loss.name),
        opt_d=torch.optim.SGD(D.parameters(), lr=0.0),
        opt_g=torch.optim.SGD(G.parameters(), lr=0.0),
        regularizers=active_regularizers(cfg),
    )


def config(**constraint) -> Config:
    cfg = Config()
    for key, value in constraint.items():
        setattr(cfg.constraint, key, value)
    return cfg


def gn_by_hand(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """GN's ``f / (n + |f|)`` per sample, from plain autograd (docs/methods.md §2.2)."""
    x = x.detach().requires_grad_()
    f = D(x).reshape(-1)
    (grad,) = torch.autograd.grad(f.sum(), x)
    n = grad.flatten(1).norm(dim=1)
    return (f / (n + f.abs())).detach()


def batch(seed: int = 1, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(n, 1, 8, 8, generator=gen, dtype=torch.float64)
    fake = torch.randn(n, 1, 8, 8, generator=gen, dtype=torch.float64)
    return real, fake


# ---- consistency regularization ---------------------------------------------------------------------


def cr_config() -> Config:
    cfg = config(gradnorm="gn")
    cfg.cr.weight, cfg.cr.max_shift, cfg.cr.flip = CR_WEIGHT, CR_SHIFT, True
    return cfg


def test_consistency_is_the_only_active_regularizer_here():
    assert [reg.name for reg in active_regularizers(cr_config())] == ["consistency"]
    assert REGULARIZERS.names() == ["consistency", "penalty"]


def test_consistency_term_is_the_squared_change_of_the_constrained_output():
    parts = make_parts(cr_config())
    real, fake = batch()
    stats = discriminator_step(parts, real, fake, torch.Generator().manual_seed(7))
    # the same draw of T as the step made (the consistency term is the only user of the generator)
    augmented = consistency_augment(real, CR_SHIFT, True, torch.Generator().manual_seed(7))
    assert not torch.equal(augmented, real)
    expected = CR_WEIGHT * (gn_by_hand(parts.D, augmented) - gn_by_hand(parts.D, real)).square().mean()
    torch.testing.assert_close(stats["d_consistency"], expected, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(stats["d_total"], stats["d_loss"] + expected, rtol=1e-12, atol=0.0)
    # the raw network output would give a different number: the test can tell the two apart
    with torch.no_grad():
        on_raw = CR_WEIGHT * (parts.D(augmented) - parts.D(real)).square().mean()
    assert abs(float(on_raw) - float(expected)) > 1e-3 * float(expected)


def test_consistency_term_without_gradient_normalization_uses_f():
    cfg = cr_config()
    cfg.constraint.gradnorm = None
    parts = make_parts(cfg)
    real, fake = batch(seed=2)
    stats = discriminator_step(parts, real, fake, torch.Generator().manual_seed(3))
    augmented = consistency_augment(real, CR_SHIFT, True, torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = CR_WEIGHT * (parts.D(augmented) - parts.D(real)).square().mean()
    torch.testing.assert_close(stats["d_consistency"], expected, rtol=1e-12, atol=0.0)


# ---- the generator step -----------------------------------------------------------------------------


class RecordingCritic:
    """Wraps a critic and records the mode of each call and whether its grad_norm kept a graph."""

    def __init__(self, critic):
        self.critic = critic
        self.modes: list[str] = []
        self.norm_has_graph: list[bool] = []

    def __call__(self, x, mode="full"):
        scores = self.critic(x, mode=mode)
        self.modes.append(mode)
        self.norm_has_graph.append(scores.grad_norm.requires_grad)
        return scores


@pytest.fixture
def grad_calls(monkeypatch):
    """`create_graph` of every `torch.autograd.grad` call (True: the input gradient has a graph, so the
    loss's backward is a double backward)."""
    calls: list[bool] = []
    real_grad = torch.autograd.grad

    def spy(*args, **kwargs):
        calls.append(bool(kwargs.get("create_graph", False)))
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    return calls


def test_the_fast_path_is_on_by_default():
    assert Config().constraint.generator_fast_path is True


@pytest.mark.parametrize(("fast_path", "mode"), [(None, "generator"), (True, "generator"), (False, "full")])
def test_generator_step_runs_the_critic_in_the_configured_mode(grad_calls, fast_path, mode):
    settings = {} if fast_path is None else {"generator_fast_path": fast_path}  # None: the default
    # the reference D-step implementation, whose full mode is the double backward (docs/methods.md §2.11)
    cfg = config(gradnorm="gran", dstep="double-backward", **settings)
    parts = make_parts(cfg)
    parts.g_critic = RecordingCritic(parts.g_critic)
    generator_step(parts, torch.randn(5, 3, dtype=torch.float64))
    assert parts.g_critic.modes == [mode]
    assert parts.g_critic.norm_has_graph == [mode == "full"]
    assert grad_calls == [mode == "full"]  # one input gradient, with a graph only in full mode
    assert all(p.grad is not None and p.grad.abs().max() > 0 for p in parts.G.parameters())
    assert all(p.grad is None and p.requires_grad for p in parts.D.parameters())


@pytest.mark.parametrize("method", ["gn", "gran", "pgn", "pgn-grad"])
@pytest.mark.parametrize("loss", ["ns", "hinge"])
def test_both_modes_give_the_generator_the_same_gradient(method, loss):
    torch.manual_seed(4)
    D, G = tiny_d(), TinyG()
    z = torch.randn(5, 3, dtype=torch.float64)
    grads = {}
    for fast_path in (True, False):
        cfg = config(gradnorm=method, generator_fast_path=fast_path)
        cfg.loss.name = loss
        parts = make_parts(cfg, D=copy.deepcopy(D), G=copy.deepcopy(G))
        stats = generator_step(parts, z)
        grads[fast_path] = (stats["g_loss"], [p.grad.clone() for p in parts.G.parameters()])
    torch.testing.assert_close(grads[True][0], grads[False][0], rtol=1e-12, atol=0.0)
    assert min(g.abs().max() for g in grads[False][1]) > 1e-6
    for fast, full in zip(grads[True][1], grads[False][1], strict=True):
        torch.testing.assert_close(fast, full, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("read_before", [False, True])
def test_scaled_step_reports_a_skipped_update_and_only_then(read_before):
    """The GradScaler skips an update whose scaled gradients hold an inf and halves its scale; scaled_step
    says so, whether it reads the scale itself or is given the one the loss was scaled by."""
    weight = nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([weight], lr=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    for overflow in (False, True, False):
        before = weight.detach().clone()
        scale = scaler.get_scale()
        opt.zero_grad(set_to_none=True)
        scaler.scale((weight * torch.tensor([1.0, 2.0, 3.0])).sum()).backward()
        if overflow:
            weight.grad[1] = float("inf")
        skipped = scaled_step(scaler, opt, before=scale if read_before else None)
        assert skipped is overflow
        if overflow:
            assert torch.equal(weight.detach(), before) and scaler.get_scale() == scale / 2
        else:  # the unscaled gradient [1, 2, 3], one SGD step of lr 0.5
            torch.testing.assert_close(weight.detach(), before - 0.5 * torch.tensor([1.0, 2.0, 3.0]))
            assert scaler.get_scale() == scale
