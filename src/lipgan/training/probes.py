"""Cheap probes the trainer can log every ``train.probe_every`` steps into ``metrics.jsonl``: input-gradient
norms (GraN Fig. 3), the output interval ``Ω`` (LipReg Fig. 1) and per-layer gradient norms of the D loss
(BSSN Fig. 2), on one batch, without touching ``.grad`` or the spectral power-iteration state."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lipgan.constraints.critic import critic_scores, input_grad_norm, with_labels
from lipgan.losses import Loss
from lipgan.nets.base import WEIGHTED_LAYERS, eval_mode, trainable_weight

PREFIX = "probe/"


def stats_scalars(name: str, values: Tensor) -> dict[str, float]:
    """``<name>_mean``, ``_min`` and ``_max`` of a batch of numbers."""
    values = values.detach()
    return {
        f"{name}_mean": float(values.mean()),
        f"{name}_min": float(values.min()),
        f"{name}_max": float(values.max()),
    }


def weighted_layers(D: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv/Linear layers of ``D`` in registration order, with their qualified names."""
    return [(name, m) for name, m in D.named_modules() if isinstance(m, WEIGHTED_LAYERS)]


def cheap_probe_scalars(
    D: nn.Module,
    critic: Callable,
    loss: Loss,
    real: Tensor,
    fake: Tensor,
    y_real: Tensor | None = None,
    y_fake: Tensor | None = None,
) -> dict[str, float]:
    """Scalars of the cheap probes on one batch, keys prefixed with ``probe/``.

    Args:
        D: the discriminator network as trained (spectral parametrizations included); ``D(x)`` is ``f`` [B].
        critic: ``critic(x, mode) -> (out, raw, grad_norm)`` (a tuple or an object with those attributes);
            ``grad_norm`` may be None, then ``||∇ₓ f||`` is computed here.
        loss: the run's loss; its ``d_loss`` is differentiated for the per-layer gradient norms.
        real, fake: one batch each ``[B, ...]``; ``fake`` is detached here.
        y_real, y_fake: their labels ``[B]`` for a conditional D (``D(x, y)``), else None.

    Returns:
        ``probe/grad_norm_{real,fake}_{mean,min,max}`` (``||∇ₓ f||``),
        ``probe/out_{real,fake}_{mean,min,max}`` (the constrained output, whose min/max over both sets is
        ``Ω``), ``probe/d_loss`` and
        ``probe/layer_grad/<layer name>`` (``||∂L_D/∂W||_F`` w.r.t. the trainable weight, i.e.
        ``parametrizations.weight.original`` under spectral normalization).

    D runs in eval mode (power iterations frozen) and is put back in its previous mode; gradients are taken
    with ``torch.autograd.grad``, so no ``.grad`` is written and the optimizer state is untouched.
    """
    n_real = real.shape[0]
    x = torch.cat([real.detach(), fake.detach()])  # [2B, ...]
    layers = weighted_layers(D)
    labels = None if y_real is None else torch.cat([y_real, y_fake])  # [2B]
    with eval_mode(D), torch.enable_grad():
        out, raw, grad_norm = critic_scores(critic, x, mode="full", y=labels)
        d_loss = loss.d_loss(out[:n_real], out[n_real:])
        grads = torch.autograd.grad(d_loss, [trainable_weight(m)[0] for _, m in layers], allow_unused=True)
        if grad_norm is None:
            grad_norm = input_grad_norm(with_labels(D, labels), x)
    scalars = {f"{PREFIX}d_loss": float(d_loss.detach())}
    for side, part in (("real", slice(0, n_real)), ("fake", slice(n_real, None))):
        scalars.update(stats_scalars(f"{PREFIX}grad_norm_{side}", grad_norm[part]))
        scalars.update(stats_scalars(f"{PREFIX}out_{side}", out[part]))
    for (name, _), grad in zip(layers, grads):
        scalars[f"{PREFIX}layer_grad/{name}"] = 0.0 if grad is None else float(grad.norm())
    return scalars
