"""Exponential moving average of the generator (GN/PGN: decay 0.9999 on CelebA-HQ and LSUN)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class GeneratorEMA:
    """`θ_ema ← d·θ_ema + (1 − d)·θ` from `start_step` on; before it, the EMA copies G. Buffers (BN running
    statistics) are copied, not averaged."""

    def __init__(self, generator: nn.Module, decay: float, start_step: int = 0):
        self.decay = decay
        self.start_step = start_step
        self.model = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module, step: int) -> None:
        decay = self.decay if step >= self.start_step else 0.0
        for ema_p, p in zip(self.model.parameters(), generator.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.model.buffers(), generator.buffers()):
            ema_b.copy_(b)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
