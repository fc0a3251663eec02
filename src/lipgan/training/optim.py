"""Optimizers and learning-rate schedules by name: `optim.name` and `optim.lr_decay` (docs/methods.md §6.4).

An optimizer builder takes `(params, lr, options)` with `options` the `optim` config section
(`OptimConfig`); a schedule is `factor(step, total_steps)`, the multiplier of both learning rates after
`step` completed generator steps of `total_steps` (`train.steps`). The papers' settings are in §6.5.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch

from lipgan.registry import Registry

if TYPE_CHECKING:
    from lipgan.training.config import OptimConfig

OptimizerBuilder = Callable[[Iterable, float, "OptimConfig"], torch.optim.Optimizer]
Schedule = Callable[[int, int], float]

OPTIMIZERS: Registry[OptimizerBuilder] = Registry("optimizer")
LR_SCHEDULES: Registry[Schedule] = Registry("learning-rate schedule")


@OPTIMIZERS.register("adam")
def adam(params: Iterable, lr: float, options: OptimConfig) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015) with `β = options.betas` and `ε = options.eps`. `ε` is a config key because it
    matters for GraN (GraN App. J; GraN §6, Eq. 21: scaling the loss gradient by K acts like dividing ε by K).
    """
    return torch.optim.Adam(params, lr=lr, betas=tuple(options.betas), eps=options.eps)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params: Iterable, lr: float, options: OptimConfig) -> torch.optim.Optimizer:
    """RMSProp with smoothing `α = options.rmsprop_alpha` and `ε = options.eps` (LipReg App. B, lr 5e-5)."""
    return torch.optim.RMSprop(params, lr=lr, alpha=options.rmsprop_alpha, eps=options.eps)


@LR_SCHEDULES.register("none")
def constant(step: int, total_steps: int) -> float:
    """`1`: both learning rates stay as configured."""
    return 1.0


@LR_SCHEDULES.register("linear")
def linear(step: int, total_steps: int) -> float:
    """`max(0, 1 − t / T)` after `t` completed generator steps of `T`: linear decay to 0 at the last step
    (GN App. D, GraN App. A). The first step trains at the full rate, since `t = 0` there."""
    return max(0.0, 1.0 - step / total_steps)
