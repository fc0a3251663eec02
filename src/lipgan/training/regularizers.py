"""The regularizer terms a discriminator update adds to its loss, by name (docs/methods.md §6.1).

An entry names the config section it reads (`section`), says from that section alone whether it is on
(`enabled(options)`) and computes its term `term(options, d_net, critic, batch)`. The term's math lives with
the rest of its method, not here:

- `penalty` (section `penalty`): `λ E[(‖∇ₓ f(x̂)‖ − c)²]`, `constraints/penalty.py` (§4).
- `consistency` (section `cr`): `λ E_real[(D̂(T(x)) − D̂(x))²]`, `training/augment.py` (§6.2).

A term never sees the whole config, so what it reads is one section's keys and nothing else.
`active_regularizers(cfg)` binds each enabled entry to its section once per run; the D step calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lipgan.constraints.critic import CriticOutput
from lipgan.constraints.penalty import penalty_term
from lipgan.registry import Registry
from lipgan.training.augment import consistency_term


@dataclass
class DStepBatch:
    """What one D update hands its regularizers."""

    real: torch.Tensor  # [B, ...]
    fake: torch.Tensor  # [B, ...], detached
    scores: CriticOutput  # the critic on [real; fake], full mode: [2B]
    generator: torch.Generator | None  # the run's auxiliary RNG (interpolates, CR's T)
    y_real: torch.Tensor | None = None  # [B] labels of a conditional run, else None
    y_fake: torch.Tensor | None = None  # [B]
    loss_scale: float = 1.0  # fp16's GradScaler scale: input gradients are taken of the scaled output


Term = Callable[[Any, nn.Module, Callable, DStepBatch], torch.Tensor]


@dataclass(frozen=True)
class Regularizer:
    name: str
    section: str  # the config section passed as `options`
    enabled: Callable[[Any], bool]  # enabled(options)
    term: Term  # term(options, d_net, critic, batch) -> scalar


@dataclass(frozen=True)
class ActiveRegularizer:
    """A regularizer bound to its config section for one run."""

    name: str
    options: Any
    term: Term

    def __call__(self, d_net: nn.Module, critic: Callable, batch: DStepBatch) -> torch.Tensor:
        return self.term(self.options, d_net, critic, batch)


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


def register(reg: Regularizer) -> Regularizer:
    return REGULARIZERS.register(reg.name)(reg)


def _weighted(options: Any) -> bool:
    return options.weight > 0  # both terms are off at weight 0, the default


register(Regularizer("penalty", "penalty", _weighted, penalty_term))
register(Regularizer("consistency", "cr", _weighted, consistency_term))


def active_regularizers(cfg: Any) -> list[ActiveRegularizer]:
    """The enabled entries of `REGULARIZERS` in name order, each bound to its section of `cfg`."""
    active = []
    for name in REGULARIZERS:
        reg = REGULARIZERS.get(name)
        options = getattr(cfg, reg.section)
        if reg.enabled(options):
            active.append(ActiveRegularizer(reg.name, options, reg.term))
    return active
