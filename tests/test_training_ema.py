"""The generator EMA (docs/methods.md §6.3): exact averages at a decay that tells d from 1 − d, the start
step, buffers copied rather than averaged, and its state."""

from __future__ import annotations

import torch
from torch import nn

from lipgan.training.ema import GeneratorEMA

DECAY = 0.9  # with 0.5 a swap of d and 1 − d would go unnoticed


def generator() -> nn.Module:
    """A linear layer and a batch norm (whose running statistics are buffers), in float64."""
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).double()


def set_params(G: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in G.parameters():
            p.fill_(value)
        G[1].running_mean.fill_(10 * value)


def ema_params(ema: GeneratorEMA) -> list[torch.Tensor]:
    return [p.detach().clone() for p in ema.model.parameters()]


def test_each_update_moves_the_average_by_one_minus_decay():
    G = generator()
    set_params(G, 1.0)
    ema = GeneratorEMA(G, DECAY)
    set_params(G, 3.0)
    ema.update(G, step=1)
    for p in ema_params(ema):  # 0.9 · 1 + 0.1 · 3
        torch.testing.assert_close(p, torch.full_like(p, 1.2), rtol=0, atol=1e-15)
    set_params(G, -2.0)
    ema.update(G, step=2)
    for p in ema_params(ema):  # 0.9 · 1.2 + 0.1 · (−2)
        torch.testing.assert_close(p, torch.full_like(p, 0.88), rtol=0, atol=1e-15)


def test_the_average_of_a_trajectory_is_the_geometric_weighting():
    G = generator()
    set_params(G, 0.0)
    ema = GeneratorEMA(G, DECAY)
    values = [1.0, 4.0, -1.0, 2.5]
    for step, value in enumerate(values, start=1):
        set_params(G, value)
        ema.update(G, step)
    # θ_ema = d⁴·θ₀ + Σₜ (1 − d)·d^(T−t)·θₜ with θ₀ = 0
    expected = sum((1 - DECAY) * DECAY ** (len(values) - t) * v for t, v in enumerate(values, start=1))
    for p in ema_params(ema):
        torch.testing.assert_close(p, torch.full_like(p, expected), rtol=0, atol=1e-14)


def test_before_ema_start_the_average_copies_the_generator():
    G = generator()
    set_params(G, 1.0)
    ema = GeneratorEMA(G, DECAY, start_step=3)
    for step, value in ((1, 5.0), (2, 7.0)):
        set_params(G, value)
        ema.update(G, step)
        for p in ema_params(ema):
            torch.testing.assert_close(p, torch.full_like(p, value), rtol=0, atol=0)
    set_params(G, 2.0)
    ema.update(G, step=3)  # the first averaged step is start_step itself
    for p in ema_params(ema):  # 0.9 · 7 + 0.1 · 2
        torch.testing.assert_close(p, torch.full_like(p, 6.5), rtol=0, atol=1e-14)


def test_buffers_are_copied_not_averaged():
    G = generator()
    set_params(G, 1.0)
    ema = GeneratorEMA(G, DECAY)
    set_params(G, 3.0)
    G[1].num_batches_tracked.fill_(7)
    ema.update(G, step=1)
    torch.testing.assert_close(ema.model[1].running_mean, torch.full((2,), 30.0, dtype=torch.float64))
    assert int(ema.model[1].num_batches_tracked) == 7


def test_the_copy_is_independent_frozen_and_in_eval_mode():
    G = generator()
    set_params(G, 1.0)
    ema = GeneratorEMA(G, DECAY)
    assert not ema.model.training and not any(p.requires_grad for p in ema.model.parameters())
    set_params(G, 4.0)  # changing G without an update leaves the average alone
    for p in ema_params(ema):
        torch.testing.assert_close(p, torch.full_like(p, 1.0), rtol=0, atol=0)


def test_state_round_trips():
    G = generator()
    set_params(G, 1.0)
    ema = GeneratorEMA(G, DECAY)
    set_params(G, 3.0)
    ema.update(G, 1)
    restored = GeneratorEMA(generator(), DECAY)
    restored.load_state_dict(ema.state_dict())
    for a, b in zip(ema_params(restored), ema_params(ema), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
