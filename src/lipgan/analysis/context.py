"""What a probe looks at: a trained discriminator, its constrained output, samples, the loss
(docs/methods.md §10).

The probes never train and never change the networks: they run D in eval mode (spectral power iterations
frozen), take input gradients with ``torch.autograd.grad`` (no ``.grad`` is accumulated) and restore the
mode afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lipgan.constraints.critic import (  # noqa: F401 (the probes import these from here)
    Critic,
    build_critic,
    critic_scores,
    per_sample_norm,
    value_and_input_grad,
)
from lipgan.losses import Loss, get_loss
from lipgan.nets.base import eval_mode  # noqa: F401
from lipgan.training.config import ConstraintConfig


@dataclass
class ProbeContext:
    """Everything a probe needs, loaded from a run or built from plain objects (:func:`make_context`).

    Attributes:
        D: the discriminator network as trained (spectral parametrizations and output scaling included);
            ``D(x)`` is the raw output ``f`` [B].
        critic: ``critic(x, mode="full")`` -> ``(out, raw, grad_norm)``, each [B]: ``out`` is the constrained
            output fed to the loss, ``raw`` is ``f`` and ``grad_norm`` is ``||∇ₓ f||`` (or None).
        real, fake: sample batches ``[N, ...]`` (images ``[N, C, H, W]``, points ``[N, 2]``).
        loss: the run's :class:`~lipgan.losses.Loss`.
        out_dir: where ``<kind>.json`` and ``plots/<kind>.png`` go.
        G: the generator, or None.
        arch, arch_kwargs: the name D was built under in ``lipgan.nets.ARCHS`` and its keyword arguments.
        constraint: constraint settings, keys of ``ConstraintConfig`` (missing keys take its defaults).
        metrics_path: the run's ``metrics.jsonl``, or None.
        is_points: True for 2-D point data (toy mixtures).
        step: the training step the networks come from, or None.
    """

    D: nn.Module
    critic: Critic
    real: Tensor
    fake: Tensor
    loss: Loss
    out_dir: Path
    G: nn.Module | None = None
    arch: str = ""
    arch_kwargs: dict = field(default_factory=dict)
    constraint: dict = field(default_factory=dict)
    metrics_path: Path | None = None
    is_points: bool = False
    step: int | None = None

    def setting(self, key: str) -> Any:
        """``constraint[key]``, or the config's default for it (one default per setting, everywhere)."""
        return self.constraint[key] if key in self.constraint else getattr(ConstraintConfig(), key)

    @property
    def gradnorm_method(self) -> str | None:
        return self.setting("gradnorm")


def make_context(
    D: nn.Module,
    real: Tensor,
    fake: Tensor,
    out_dir: str | Path,
    *,
    loss: str | Loss = "hinge",
    constraint: dict | None = None,
    critic: Critic | None = None,
    G: nn.Module | None = None,
    arch: str = "",
    arch_kwargs: dict | None = None,
    metrics_path: str | Path | None = None,
    step: int | None = None,
) -> ProbeContext:
    """A :class:`ProbeContext` from plain objects; the critic follows ``constraint`` unless given, and
    ``is_points`` is inferred from the sample shape ``[N, 2]``."""
    constraint = dict(constraint or {})
    return ProbeContext(
        D=D,
        critic=critic if critic is not None else build_critic(D, constraint),
        real=real,
        fake=fake,
        loss=get_loss(loss) if isinstance(loss, str) else loss,
        out_dir=Path(out_dir),
        G=G,
        arch=arch,
        arch_kwargs=dict(arch_kwargs or {}),
        constraint=constraint,
        metrics_path=Path(metrics_path) if metrics_path is not None else None,
        is_points=real.dim() == 2 and real.shape[1] == 2,
        step=step,
    )


def constrained_output(ctx: ProbeContext) -> Callable[[Tensor], Tensor]:
    """``x -> out`` [B], the constrained output fed to the loss (double-backward mode, exact gradients)."""
    return lambda x: critic_scores(ctx.critic, x, mode="full").out


def raw_output(ctx: ProbeContext) -> Callable[[Tensor], Tensor]:
    """``x -> f(x)`` [B], the network output."""
    return lambda x: ctx.D(x).reshape(x.shape[0])


def batched(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int = 256) -> Tensor:
    """``fn`` over ``x`` in chunks of ``batch_size``, concatenated (keeps memory flat on big grids)."""
    return torch.cat([fn(chunk) for chunk in x.split(batch_size)])
