"""The gradient normalizations of docs/methods.md §2, one formula per function, registered by name.

Every method maps the raw discriminator output ``f`` [B] and its input gradient ``∇ₓf`` [B, ...] to a
normalized output ``f̂`` [B] in two steps:

1. ``norm(f, grad) -> m`` [B]: the per-sample norm the method divides by. It is ``n = ||∇ₓf||₂`` (over all
   input dimensions of a sample) for every method except ``pgn``, which uses ``||𝟙 − ∇ₓf||₂``.
2. ``normalize(f, m, tau, eps) -> f̂`` [B]: the closed-form formula.

For piecewise-linear ``f`` (ReLU/LeakyReLU, no batch norm) ``∇ₓm = 0`` almost everywhere, so
``∇ₓf̂ = c(f, m) · ∇ₓf`` with ``c = ∂f̂/∂f`` at fixed ``m``. The generator step never forms ``c``: in
``mode="generator"`` (:mod:`lipgan.constraints.gradnorm`) ``m`` is computed without a graph, so autograd's
derivative of ``normalize`` at fixed ``m`` is ``c`` (docs/methods.md §2.8).

Methods that do not use ``tau`` or ``eps`` accept and ignore them, so every method has one signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lipgan.registry import Registry

NormFn = Callable[[Tensor, Tensor], Tensor]  # (f [B], grad [B, ...]) -> [B]
FormulaFn = Callable[[Tensor, Tensor, float, float], Tensor]  # (f [B], m [B], tau, eps) -> [B]


@dataclass(frozen=True)
class GradNormMethod:
    """One gradient normalization: the norm it divides by and its formula."""

    name: str
    norm: NormFn
    normalize: FormulaFn
    source: str


def input_gradient_norm(f: Tensor, grad: Tensor) -> Tensor:
    """``n = ||∇ₓf||₂`` per sample over all input dimensions (docs/methods.md §1.1).
    grad: [B, ...] -> [B]."""
    return torch.linalg.vector_norm(grad.flatten(1), dim=1)


def ones_minus_gradient_norm(f: Tensor, grad: Tensor) -> Tensor:
    """``||𝟙 − ∇ₓf||₂`` per sample: the ones vector minus the gradient, element by element over every input
    dimension (PGN, Algorithm 1, line 1). grad: [B, ...] -> [B]."""
    return torch.linalg.vector_norm((1.0 - grad).flatten(1), dim=1)


# --- GN (Wu et al. 2021) ------------------------------------------------------------------------------


def gn(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GN (Wu et al. 2021, Thm 6, Eq. 11): ``f̂ = f / (n + |f|)``.

    Bounded: ``|f̂| ≤ 1``; for piecewise-linear f, ``||∇ₓf̂|| = (n / (n + |f|))² ≤ 1`` (Eq. 12–14).
    """
    return f / (m + f.abs())


def gn1(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GN₁ (Wu et al. 2021, App. B.1, Fig. 2; ``ζ(x) = 1``): ``f̂ = f / (n + 1)``."""
    return f / (m + 1.0)


def gn0(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GN₀ (Wu et al. 2021, App. B.1, Fig. 2; ``ζ(x) = 0``): ``f̂ = f / n``; ``||∇ₓf̂|| = 1`` a.e."""
    return f / m


# --- GraN (Bhaskara et al. 2022) ----------------------------------------------------------------------


def gran(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GraN (Bhaskara et al. 2022, Eq. 16, 20): ``g = (f/τ) · n / (n² + ε)``, with ``K = 1/τ``.

    Piecewise K-Lipschitz: ``||∇ₓg|| = K n² / (n² + ε) < K`` a.e. (Eq. 19, scaled by 1/τ).
    """
    return (f / tau) * m / (m * m + eps)


def gran_inv(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GraN with ``R(n) = 1/(n + ε)`` (Bhaskara et al. 2022, §4): ``g = (f/τ) / (n + ε)``.

    ``||∇ₓg|| = K n / (n + ε) < K`` a.e., with ``K = 1/τ``.
    """
    return (f / tau) / (m + eps)


# --- PGN (Xia) ----------------------------------------------------------------------------------------


def pgn(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """PGN (Xia; Algorithm 1, Thm 6): ``f̂ = (1 − f) / (m + |1 − f|)``, bounded to [−1, 1].

    The paper is ambiguous about ``m``. Algorithm 1 (and the authors' code) writes ``||1 − ∇ₓf||``: a vector
    of ones minus the gradient, element by element, so ``m = ||𝟙 − ∇ₓf||`` (method ``pgn``). The derivation
    (Eq. 10–14, Eq. 25–30) writes ``||∇ₓ(1 − f)||``, which is just ``n = ||∇ₓf||`` (method ``pgn-grad``).
    Both readings share this formula and differ only in the norm passed as ``m``. Only with ``pgn-grad`` does
    the bound ``||∇ₓf̂|| = (n / (n + |1 − f|))² ≤ 1`` of Eq. 25 hold; with ``pgn`` it is
    ``n m / (m + |1 − f|)²``, which is not bounded by 1 in general.
    """
    one_minus_f = 1.0 - f
    return one_minus_f / (m + one_minus_f.abs())


# --- registry -----------------------------------------------------------------------------------------

GRADNORM_METHODS: Registry[GradNormMethod] = Registry("gradient normalization method")

_METHODS = (
    GradNormMethod("gn", input_gradient_norm, gn, "GN (Wu et al. 2021) Thm 6, Eq. 11"),
    GradNormMethod("gn1", input_gradient_norm, gn1, "GN (Wu et al. 2021) App. B.1"),
    GradNormMethod("gn0", input_gradient_norm, gn0, "GN (Wu et al. 2021) App. B.1"),
    GradNormMethod("gran", input_gradient_norm, gran, "GraN (Bhaskara 2022) Eq. 20"),
    GradNormMethod("gran-inv", input_gradient_norm, gran_inv, "GraN (Bhaskara 2022) §4"),
    GradNormMethod("pgn", ones_minus_gradient_norm, pgn, "PGN (Xia) Algorithm 1"),
    GradNormMethod("pgn-grad", input_gradient_norm, pgn, "PGN (Xia) Eq. 10-14"),
)
for _method in _METHODS:
    GRADNORM_METHODS.register(_method.name)(_method)
