"""GAN losses compared in LipReg, with domain scaling (docs/methods.md §5).

Each loss is three elementwise terms of the raw discriminator output ``ω`` (after any normalization):
the real term and the fake term of the discriminator loss, and the fake term of the generator loss.
Both losses are batch means of their terms.

Sign convention: reals are pushed **up** and fakes **down** for every loss. LipReg's Table 1 writes WGAN
and EXP-GAN the other way round (reals down); the losses here equal those under ``ω -> -ω``.

Domain scaling (LipReg Eq. 11, 19) replaces every term ``L`` by ``L_α(ω) = L(α ω) / α``. It keeps the
gradient scale (``L_α'(ω) = L'(α ω)``) and, as ``α -> 0``, turns each term into the line through the
origin with slope ``L'(0)``. The paper trains down to ``α = 1e-25``; every term here stays finite there in
float32, in value and gradient, for outputs of moderate size.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lipgan.errors import ConfigError
from lipgan.registry import Registry

Term = Callable[[torch.Tensor], torch.Tensor]

TERM_NAMES = ("d_real", "d_fake", "g_fake")


# ---- elementwise terms, one formula each -------------------------------------------------------------


def softplus_neg(x: torch.Tensor) -> torch.Tensor:
    """``softplus(-x) = -log σ(x)``: cross-entropy of a sample labelled real (Goodfellow 2014)."""
    return F.softplus(-x)


def softplus_pos(x: torch.Tensor) -> torch.Tensor:
    """``softplus(x) = -log(1 - σ(x))``: cross-entropy of a sample labelled fake (Goodfellow 2014)."""
    return F.softplus(x)


def neg_softplus(x: torch.Tensor) -> torch.Tensor:
    """``-softplus(x) = log(1 - σ(x))``: the saturating minimax generator term (Goodfellow 2014)."""
    return -F.softplus(x)


def negate(x: torch.Tensor) -> torch.Tensor:
    """``-x``: the Wasserstein term that pushes ``x`` up (Arjovsky 2017; LipReg Table 1, WGAN)."""
    return -x


def identity(x: torch.Tensor) -> torch.Tensor:
    """``x``: the Wasserstein term that pushes ``x`` down (Arjovsky 2017; LipReg Table 1, WGAN)."""
    return x


def hinge_real(x: torch.Tensor) -> torch.Tensor:
    """``relu(1 - x)``: hinge term of a real sample (Lim & Ye 2017; Miyato 2018)."""
    return F.relu(1.0 - x)


def hinge_fake(x: torch.Tensor) -> torch.Tensor:
    """``relu(1 + x)``: hinge term of a fake sample (Lim & Ye 2017; Miyato 2018)."""
    return F.relu(1.0 + x)


def soft_hinge_real(x: torch.Tensor) -> torch.Tensor:
    """``softplus(1 - x)``: soft hinge term of a real sample (GraN Eq. 10 with ReLU -> softplus; GraNC)."""
    return F.softplus(1.0 - x)


def soft_hinge_fake(x: torch.Tensor) -> torch.Tensor:
    """``softplus(1 + x)``: soft hinge term of a fake sample (GraN Eq. 10 with ReLU -> softplus; GraNC)."""
    return F.softplus(1.0 + x)


def square_minus_one(x: torch.Tensor) -> torch.Tensor:
    """``(x - 1)²``: least-squares pull towards 1 (Mao 2017; LipReg Table 1, LS-GAN)."""
    return (x - 1.0).square()


def square(x: torch.Tensor) -> torch.Tensor:
    """``x²``: least-squares pull towards 0 (Mao 2017; LipReg Table 1, LS-GAN)."""
    return x.square()


def square_plus_one(x: torch.Tensor) -> torch.Tensor:
    """``(x + 1)²``: least-squares pull towards -1, zero-centred LS# (Mao 2017b; LipReg App. D)."""
    return (x + 1.0).square()


def neg_cos_minus_one(x: torch.Tensor) -> torch.Tensor:
    """``-cos(x - 1)``: COS-GAN term with its minimum at ``x = 1`` (LipReg Table 1)."""
    return -torch.cos(x - 1.0)


def neg_cos_plus_one(x: torch.Tensor) -> torch.Tensor:
    """``-cos(x + 1)``: COS-GAN term with its minimum at ``x = -1`` (LipReg Table 1)."""
    return -torch.cos(x + 1.0)


def exp_neg(x: torch.Tensor) -> torch.Tensor:
    """``exp(-x)``: EXP-GAN term that pushes ``x`` up (LipReg Table 1, sign flipped)."""
    return torch.exp(-x)


def exp_pos(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)``: EXP-GAN term that pushes ``x`` down (LipReg Table 1, sign flipped)."""
    return torch.exp(x)


# ---- registry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossTerms:
    """The three elementwise terms of one loss: ``d_loss = E[d_real(r)] + E[d_fake(f)]``,
    ``g_loss = E[g_fake(f)]``."""

    d_real: Term
    d_fake: Term
    g_fake: Term
    source: str


LOSSES: Registry[LossTerms] = Registry("loss")

LOSSES.register("minimax")(
    LossTerms(softplus_neg, softplus_pos, neg_softplus, "Goodfellow 2014, saturating minimax")
)
LOSSES.register("ns")(LossTerms(softplus_neg, softplus_pos, softplus_neg, "LipReg Table 1, NS-GAN"))
LOSSES.register("wgan")(LossTerms(negate, identity, negate, "LipReg Table 1, WGAN (sign flipped)"))
LOSSES.register("hinge")(LossTerms(hinge_real, hinge_fake, negate, "Lim & Ye 2017; Miyato 2018"))
LOSSES.register("soft-hinge")(
    LossTerms(soft_hinge_real, soft_hinge_fake, negate, "GraN Eq. 10 with softplus, GraNC")
)
LOSSES.register("ls")(LossTerms(square_minus_one, square, square_minus_one, "LipReg Table 1, LS-GAN"))
LOSSES.register("ls0")(
    LossTerms(square_minus_one, square_plus_one, square, "LipReg App. D, LS#-GAN (Mao 2017b)")
)
LOSSES.register("cos")(
    LossTerms(neg_cos_minus_one, neg_cos_plus_one, neg_cos_minus_one, "LipReg Table 1, COS-GAN")
)
LOSSES.register("exp")(LossTerms(exp_neg, exp_pos, exp_neg, "LipReg Table 1, EXP-GAN (sign flipped)"))


# ---- domain scaling and the loss object --------------------------------------------------------------


def domain_scaled(term: Term, omega: torch.Tensor, alpha: float) -> torch.Tensor:
    """``L_α(ω) = L(α ω) / α`` (LipReg Eq. 11, 19). Shape-preserving.

    Forward: ``L(α ω)`` is O(1) for every registered term when ``|α ω| ≲ 1``, so dividing by ``α`` gives
    at most ~1e25 at ``α = 1e-25``, well inside float32. Backward: the chain is ``(g / α) · L'(α ω) · α``,
    whose intermediate ``g / α`` is again ~1e25 and finite.
    """
    return term(omega * alpha) / alpha


def check_domain_scale(alpha: float) -> float:
    """Domain scaling needs a finite ``α > 0`` (LipReg Eq. 11); otherwise the scaled loss is undefined."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise ConfigError(f"domain_scale must be a positive number, got {alpha!r}")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"domain_scale must be a finite number > 0, got {alpha!r}")
    return float(alpha)


class Loss:
    """A GAN loss with domain scaling ``α`` applied to every term (LipReg Eq. 11).

    Elementwise terms keep the shape of their input (``[B]`` or ``[B, 1]``); ``d_loss`` and ``g_loss`` are
    batch means, so either shape works. Reals are pushed up and fakes down.
    """

    def __init__(self, name: str, domain_scale: float = 1.0):
        self.terms = LOSSES.get(name)
        self.name = name
        self.domain_scale = check_domain_scale(domain_scale)

    def d_real(self, r: torch.Tensor) -> torch.Tensor:
        """Discriminator term of real outputs ``r``, elementwise."""
        return domain_scaled(self.terms.d_real, r, self.domain_scale)

    def d_fake(self, f: torch.Tensor) -> torch.Tensor:
        """Discriminator term of fake outputs ``f``, elementwise."""
        return domain_scaled(self.terms.d_fake, f, self.domain_scale)

    def g_fake(self, f: torch.Tensor) -> torch.Tensor:
        """Generator term of fake outputs ``f``, elementwise."""
        return domain_scaled(self.terms.g_fake, f, self.domain_scale)

    def d_loss(self, r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """``E[d_real(r)] + E[d_fake(f)]``, a scalar."""
        return self.d_real(r).mean() + self.d_fake(f).mean()

    def g_loss(self, f: torch.Tensor) -> torch.Tensor:
        """``E[g_fake(f)]``, a scalar."""
        return self.g_fake(f).mean()

    def __repr__(self) -> str:
        return f"Loss({self.name!r}, domain_scale={self.domain_scale!r})"


def get_loss(name: str, domain_scale: float = 1.0) -> Loss:
    """The loss registered as ``name`` (see ``LOSSES.names()``), domain-scaled by ``α = domain_scale``."""
    return Loss(name, domain_scale)


def loss_derivatives(loss: Loss, omega: torch.Tensor | Sequence[float]) -> dict[str, torch.Tensor]:
    """Derivatives ``L'`` of each domain-scaled term at the outputs ``omega``, by autograd.

    Returns ``{"d_real", "d_fake", "g_fake"}``, each detached with ``omega``'s shape. Evaluated over the
    attained outputs ``Ω`` this gives LipReg's ``Ψ = L'(Ω)`` (Fig. 1). Works under ``torch.no_grad``.
    """
    omega = torch.as_tensor(omega)
    if not omega.is_floating_point():
        omega = omega.to(torch.get_default_dtype())
    with torch.enable_grad():
        point = omega.detach().clone().requires_grad_(True)
        return {name: _term_derivative(getattr(loss, name), point) for name in TERM_NAMES}


def _term_derivative(term: Term, point: torch.Tensor) -> torch.Tensor:
    """Elementwise derivative of an elementwise ``term`` at ``point`` (a leaf that requires grad)."""
    (derivative,) = torch.autograd.grad(term(point).sum(), point)
    return derivative.detach()
