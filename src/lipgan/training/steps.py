"""One discriminator update and one generator update, composed from registered pieces.

The D step reads top to bottom (docs/methods.md §6.1): reals and fakes go through the critic in one
concatenated forward, the loss is computed, each active regularizer term (training/regularizers.py, each bound
to its own config section) is added, and the optimizer steps. A new constraint, loss or penalty is a registry
entry elsewhere; nothing here branches on the method.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from lipgan.constraints.critic import critic_scores
from lipgan.losses import Loss
from lipgan.training.augmentation import AUGMENTS, Augmentation
from lipgan.training.config import Config
from lipgan.training.regularizers import REGULARIZERS, ActiveRegularizer, DStepBatch, active_regularizers

# the regularizer names stay importable from here, where the trainer and the tests have found them
__all__ = [
    "REGULARIZERS",
    "DStepBatch",
    "StepParts",
    "active_regularizers",
    "discriminator_step",
    "generator_step",
]


@dataclass
class StepParts:
    """What the two updates need; `d_net` is the (possibly DDP-wrapped) network the D step differentiates."""

    cfg: Config
    G: nn.Module
    D: nn.Module  # unwrapped
    d_net: nn.Module
    critic: Callable  # built on d_net, for the D step
    g_critic: Callable  # built on the unwrapped D, for the G step (D is not updated there)
    loss: Loss
    opt_d: torch.optim.Optimizer
    opt_g: torch.optim.Optimizer
    regularizers: list[ActiveRegularizer] = field(default_factory=list)  # active_regularizers(cfg)
    augment: Augmentation = AUGMENTS.get("none")  # data.augment: what D sees (docs/methods.md §6.6)
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext  # train.precision
    # fp16's loss scaling, one scaler per optimizer; disabled (scale 1, a plain step) at fp32 and bf16
    scaler_d: torch.amp.GradScaler = field(default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False))
    scaler_g: torch.amp.GradScaler = field(default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False))


def loss_scale(scaler: torch.amp.GradScaler) -> float:
    """The scaler's current scale, 1.0 when it is disabled (fp32, bf16)."""
    return float(scaler.get_scale()) if scaler.is_enabled() else 1.0


def scaled_step(
    scaler: torch.amp.GradScaler, opt: torch.optim.Optimizer, before: float | None = None
) -> bool:
    """`scaler.step(opt)` and `scaler.update()`; True when the scaler skipped the update because the scaled
    gradients overflowed (it then halves its scale). Never True without fp16. `before`: the scale the step's
    loss was scaled by, when the caller has read it already (each read is a host sync on CUDA)."""
    before = loss_scale(scaler) if before is None else before
    scaler.step(opt)
    scaler.update()
    return loss_scale(scaler) < before


def discriminator_step(
    parts: StepParts,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
    y_real: torch.Tensor | None = None,
    y_fake: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One D update on reals and (detached) fakes; returns detached scalars and per-sample stats. A
    conditional run passes the labels `y_real`, `y_fake` [B]: each sample is scored by `D_y` of its own
    class (docs/methods.md §2.12)."""
    fake = fake.detach()
    real = parts.augment.reals(real, generator)
    n_real = real.shape[0]
    labels = None if y_real is None else torch.cat([y_real, y_fake])  # [2B], rows of [real; fake]
    # under autocast the critic still returns float32 (constraints/critic.py), and the penalty and CR terms
    # are built from it or from input gradients, which take the float32 input's dtype
    with parts.autocast():
        d_input = parts.augment.d_input(torch.cat([real, fake]), generator)
        scores = critic_scores(parts.critic, d_input, mode="full", y=labels)
        out_real, out_fake = scores.out[:n_real], scores.out[n_real:]
        d_loss = parts.loss.d_loss(out_real, out_fake)
        scale = loss_scale(parts.scaler_d)  # read once: the penalties' AMP recipe and the skip check
        batch = DStepBatch(real, fake, scores, generator, y_real, y_fake, scale)
        terms = {reg.name: reg(parts.d_net, parts.critic, batch) for reg in parts.regularizers}
        total = d_loss + sum(terms.values())
    parts.opt_d.zero_grad(set_to_none=True)
    # fp16: the scaled loss keeps small gradients above fp16's underflow; `step` unscales them and skips
    # an update whose gradients overflowed, `update` adapts the scale (PyTorch's AMP recipe)
    parts.scaler_d.scale(total).backward()
    stats = {"d_skipped": scaled_step(parts.scaler_d, parts.opt_d, before=scale)}
    stats.update({"d_loss": d_loss.detach(), "d_total": total.detach()})
    stats.update({f"d_{name}": value.detach() for name, value in terms.items()})
    stats["out_real"] = out_real.detach()
    stats["out_fake"] = out_fake.detach()
    stats["raw_real"] = scores.raw[:n_real].detach()
    stats["raw_fake"] = scores.raw[n_real:].detach()
    if scores.grad_norm is not None:
        stats["n_real"] = scores.grad_norm[:n_real].detach()
        stats["n_fake"] = scores.grad_norm[n_real:].detach()
    return stats


def generator_step(
    parts: StepParts, z: torch.Tensor, generator: torch.Generator | None = None, y: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """One G update. The critic runs in `mode="generator"` (no double backward) unless the config forces
    the full mode; for piecewise-linear D both give the same gradient (docs/methods.md §2.8), also with the
    labels `y` [B] of a conditional run, which G and D_y share. DiffAugment, when on, sits between G and D
    (drawing from `generator`), so G's gradient passes through it."""
    mode = "generator" if parts.cfg.constraint.generator_fast_path else "full"
    parts.D.requires_grad_(False)  # only G's gradient is needed; D's would be thrown away
    try:
        with parts.autocast():
            fake = parts.augment.d_input(parts.G(z) if y is None else parts.G(z, y), generator)
            g_loss = parts.loss.g_loss(critic_scores(parts.g_critic, fake, mode=mode, y=y).out)
        parts.opt_g.zero_grad(set_to_none=True)
        # only G's loss is scaled: the fast path's input gradient of D (§2.8) was taken of f itself,
        # so the normalization saw the unscaled gradient
        parts.scaler_g.scale(g_loss).backward()
    finally:
        parts.D.requires_grad_(True)
    return {"g_loss": g_loss.detach(), "g_skipped": scaled_step(parts.scaler_g, parts.opt_g)}
