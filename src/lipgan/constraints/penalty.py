"""Gradient penalties on the discriminator's input gradient (docs/methods.md §4).

``gradient_penalty`` returns the unweighted mean ``E[(||∇ₓ D(x̂)||₂ − c)²]`` over the samples of one penalty
site; the caller multiplies it by ``λ`` (or ``γ/2``) and adds it to the discriminator loss.

- WGAN-GP (Gulrajani et al. 2017): ``c = 1`` at random interpolates of reals and fakes, ``λ = 10``.
- GP† / ``k_GP`` (GraN App. B; LipReg Eq. 18): the same with ``c = K``.
- R1 / zero-centred (Mescheder et al. 2018): ``c = 0`` at reals (``E||∇D||²``), optionally also at fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from lipgan.constraints.critic import input_grad_norm, with_labels
from lipgan.registry import Registry

Critic = Callable[[torch.Tensor], torch.Tensor]
Site = Callable[[torch.Tensor, torch.Tensor, "torch.Generator | None"], torch.Tensor]

PENALTY_SITES: Registry[Site] = Registry("penalty site")


@PENALTY_SITES.register("interpolates")
def interpolates(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``x̂ = ε x_r + (1 − ε) x_f`` with one ``ε ~ U(0, 1)`` per sample (Gulrajani et al. 2017, Alg. 1).

    ``generator`` (a ``torch.Generator`` on any device) makes the draw reproducible.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"interpolation needs reals and fakes of one shape, got {real.shape} and {fake.shape}"
        )
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)  # [B, 1, 1, ...]
    # drawn where the generator lives (a CPU generator also serves CUDA data), then moved
    gen_device = generator.device if generator is not None else real.device
    eps = torch.rand(eps_shape, generator=generator, device=gen_device, dtype=real.dtype).to(real.device)
    return eps * real + (1.0 - eps) * fake


@PENALTY_SITES.register("real")
def at_real(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The real samples; with ``c = 0`` this is R1 (Mescheder et al. 2018, Eq. 9)."""
    return real


@PENALTY_SITES.register("fake")
def at_fake(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The fake samples; with ``c = 0`` this is R2 (Mescheder et al. 2018, Eq. 10)."""
    return fake


@PENALTY_SITES.register("real+fake")
def at_real_and_fake(
    real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Reals and fakes in one batch ``[B_r + B_f, ...]``, so D sees them in one forward."""
    return torch.cat([real, fake], dim=0)


# the labels of a conditional D at each site: an interpolate keeps its real endpoint's label, as
# StudioGAN's conditional WGAN-GP does (docs/methods.md §4.1)
SITE_LABELS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "interpolates": lambda y_real, y_fake: y_real,
    "real": lambda y_real, y_fake: y_real,
    "fake": lambda y_real, y_fake: y_fake,
    "real+fake": lambda y_real, y_fake: torch.cat([y_real, y_fake]),
}


def site_labels(at: str, y_real: torch.Tensor | None, y_fake: torch.Tensor | None) -> torch.Tensor | None:
    """The class labels of the penalty points of site ``at`` (None for an unconditional D)."""
    PENALTY_SITES.get(at)
    if y_real is None:
        return None
    return SITE_LABELS[at](y_real, y_fake)


def input_gradient_norms(D: Critic, points: torch.Tensor, loss_scale: float = 1.0) -> torch.Tensor:
    """``||∇ₓ D(x)||₂`` per sample over all input dims, kept differentiable (``create_graph=True``).

    ``points`` [N, ...] must require grad; ``D`` returns [N] or [N, 1]. Returns [N].
    """
    return input_grad_norm(D, points, create_graph=True, loss_scale=loss_scale)  # [N]


def centred_penalty(norms: torch.Tensor, center: float) -> torch.Tensor:
    """``E[(n − c)²]`` over the samples (Gulrajani et al. 2017 Eq. 3; GraN App. B; LipReg Eq. 18)."""
    return (norms - center).square().mean()


def gradient_penalty(
    D: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    center: float = 1.0,
    at: str = "interpolates",
    generator: torch.Generator | None = None,
    y_real: torch.Tensor | None = None,
    y_fake: torch.Tensor | None = None,
    loss_scale: float = 1.0,
) -> torch.Tensor:
    """Unweighted gradient penalty ``E[(||∇ₓ D(x̂)||₂ − c)²]`` at the site ``at`` (see ``PENALTY_SITES``).

    ``center=1`` with ``at="interpolates"`` is WGAN-GP (Gulrajani et al. 2017); ``center=K`` is GP† /
    ``k_GP`` (GraN App. B; LipReg Eq. 18); ``center=0`` with ``at="real"`` is R1 (Mescheder et al. 2018),
    whose ``γ/2`` weight is the caller's. ``real`` and ``fake`` [B, ...] are detached: the penalty trains D
    only, through a double backward. For a conditional D, ``y_real`` and ``y_fake`` [B] are the labels, and
    each point is scored by the D of its site's label (``site_labels``). Under fp16, ``loss_scale`` is the
    GradScaler's scale (``input_grad_norm``). Returns a scalar.
    """
    site = PENALTY_SITES.get(at)
    points = site(real.detach(), fake.detach(), generator).detach().requires_grad_(True)  # [N, ...]
    D_y = with_labels(D, site_labels(at, y_real, y_fake))
    return centred_penalty(input_gradient_norms(D_y, points, loss_scale), center)


class PenaltyOptions(Protocol):
    """What the penalty term reads: the ``penalty`` config section (``PenaltyConfig``). A protocol, since
    ``constraints`` does not import ``training``."""

    weight: float
    center: float
    at: str


class PenaltyBatch(Protocol):
    """The D step's batch (``training.regularizers.DStepBatch``), as far as the penalty needs it."""

    real: torch.Tensor
    fake: torch.Tensor
    generator: torch.Generator | None
    y_real: torch.Tensor | None
    y_fake: torch.Tensor | None
    loss_scale: float


def penalty_term(
    options: PenaltyOptions, d_net: Critic, critic: Callable, batch: PenaltyBatch
) -> torch.Tensor:
    """The D step's penalty term ``λ E[(||∇ₓ f(x̂)|| − c)²]`` (docs/methods.md §4.1): WGAN-GP with ``c = 1``
    (§4.2), GP† / ``k_GP`` with ``c = K`` (§4.3), R1 / R2 with ``c = 0`` (§4.4); ``λ = options.weight``.

    It differentiates the network output ``f`` of ``d_net`` (under DDP the wrapped net, so the double
    backward's parameter gradients are averaged), never the gradient-normalized ``critic``. Scalar.
    """
    return options.weight * gradient_penalty(
        d_net,
        batch.real,
        batch.fake,
        center=options.center,
        at=options.at,
        generator=batch.generator,
        y_real=batch.y_real,
        y_fake=batch.y_fake,
        loss_scale=batch.loss_scale,
    )
