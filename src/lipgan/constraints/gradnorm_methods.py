"""The gradient normalizations of docs/methods.md §2, one formula per function, registered by name.

Every method maps the raw discriminator output ``f`` [B] and its input gradient ``∇ₓf`` [B, ...] to a
normalized output ``f̂`` [B] in two steps:

1. ``norm(f, grad) -> m`` [B]: the per-sample norm the method divides by. It is ``n = ||∇ₓf||₂`` (over all
   input dimensions of a sample) for every method except ``pgn``, which uses ``||𝟙 − ∇ₓf||₂``.
2. ``normalize(f, m, tau, eps) -> f̂`` [B]: the closed-form formula.

For piecewise-linear ``f`` (ReLU/LeakyReLU, no batch norm) ``∇ₓm = 0`` almost everywhere, so
``∇ₓf̂ = c(f, m) · ∇ₓf`` with ``c = ∂f̂/∂f`` at fixed ``m``. ``input_grad_scale(f, m, tau, eps) -> c`` [B] is
that closed form. The generator step does not need it: in `mode="generator"` the norm is taken without a
graph, so autograd applies c by itself (docs/methods.md §2.8). The gradient-norm probe uses it to check
``||∇ₓf̂|| = |c| · ||∇ₓf||`` for every method (docs/methods.md §10.1).

Methods that do not use ``tau`` or ``eps`` accept and ignore them, so every method has one signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from lipgan.constraints.critic import per_sample_norm
from lipgan.registry import Registry

NormFn = Callable[[Tensor, Tensor], Tensor]  # (f [B], grad [B, ...]) -> [B]
FormulaFn = Callable[[Tensor, Tensor, float, float], Tensor]  # (f [B], m [B], tau, eps) -> [B]


@dataclass(frozen=True)
class GradNormMethod:
    """One gradient normalization: the norm it divides by, its formula and its input-gradient scale."""

    name: str
    norm: NormFn
    normalize: FormulaFn
    input_grad_scale: FormulaFn
    source: str


def input_gradient_norm(f: Tensor, grad: Tensor) -> Tensor:
    """``n = ||∇ₓf||₂`` per sample over all input dimensions (docs/methods.md §1.1).
    grad: [B, ...] -> [B]."""
    return per_sample_norm(grad)


def ones_minus_gradient_norm(f: Tensor, grad: Tensor) -> Tensor:
    """``||𝟙 − ∇ₓf||₂`` per sample: the ones vector minus the gradient, element by element over every input
    dimension (PGN, Algorithm 1, line 1). grad: [B, ...] -> [B]."""
    return per_sample_norm(1.0 - grad)


# --- GN (Wu et al. 2021) ------------------------------------------------------------------------------


def gn(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GN (Wu et al. 2021, Thm 6, Eq. 11): ``f̂ = f / (n + |f|)``.

    Bounded: ``|f̂| ≤ 1``; for piecewise-linear f, ``||∇ₓf̂|| = (n / (n + |f|))² ≤ 1`` (Eq. 12–14).
    """
    return f / (m + f.abs())


def gn_input_grad_scale(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GN: ``∂f̂/∂f = n / (n + |f|)²`` at fixed n (docs/methods.md §2.8)."""
    return m / (m + f.abs()) ** 2


def gn1(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GN₁ (Wu et al. 2021, App. B.1, Fig. 2; ``ζ(x) = 1``): ``f̂ = f / (n + 1)``."""
    return f / (m + 1.0)


def gn1_input_grad_scale(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GN₁: ``∂f̂/∂f = 1 / (n + 1)`` at fixed n."""
    return 1.0 / (m + 1.0)


def gn0(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GN₀ (Wu et al. 2021, App. B.1, Fig. 2; ``ζ(x) = 0``): ``f̂ = f / n``; ``||∇ₓf̂|| = 1`` a.e."""
    return f / m


def gn0_input_grad_scale(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GN₀: ``∂f̂/∂f = 1 / n`` at fixed n."""
    return 1.0 / m


# --- GraN (Bhaskara et al. 2022) ----------------------------------------------------------------------


def gran(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GraN (Bhaskara et al. 2022, Eq. 16, 20): ``g = (f/τ) · n / (n² + ε)``, with ``K = 1/τ``.

    Piecewise K-Lipschitz: ``||∇ₓg|| = K n² / (n² + ε) < K`` a.e. (Eq. 19, scaled by 1/τ).
    """
    return (f / tau) * m / (m * m + eps)


def gran_input_grad_scale(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GraN: ``∂g/∂f = n / (τ (n² + ε))`` at fixed n (docs/methods.md §2.8)."""
    return m / (tau * (m * m + eps))


def gran_inv(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GraN with ``R(n) = 1/(n + ε)`` (Bhaskara et al. 2022, §4): ``g = (f/τ) / (n + ε)``.

    ``||∇ₓg|| = K n / (n + ε) < K`` a.e., with ``K = 1/τ``.
    """
    return (f / tau) / (m + eps)


def gran_inv_input_grad_scale(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """GraN with ``R(n) = 1/(n + ε)``: ``∂g/∂f = 1 / (τ (n + ε))`` at fixed n."""
    return 1.0 / (tau * (m + eps))


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


def pgn_input_grad_scale(f: Tensor, m: Tensor, tau: float, eps: float) -> Tensor:
    """PGN, either reading: ``∂f̂/∂f = −m / (m + |1 − f|)²`` at fixed m, where m is the norm the method
    divides by (``||𝟙 − ∇ₓf||`` for ``pgn``, ``||∇ₓf||`` for ``pgn-grad``). The sign is negative because PGN
    normalizes ``1 − f``: a higher raw score gives a lower normalized one."""
    return -m / (m + (1.0 - f).abs()) ** 2


# --- registry -----------------------------------------------------------------------------------------

GRADNORM_METHODS: Registry[GradNormMethod] = Registry("gradient normalization method")

_METHODS = (
    GradNormMethod("gn", input_gradient_norm, gn, gn_input_grad_scale, "GN (Wu et al. 2021) Thm 6, Eq. 11"),
    GradNormMethod("gn1", input_gradient_norm, gn1, gn1_input_grad_scale, "GN (Wu et al. 2021) App. B.1"),
    GradNormMethod("gn0", input_gradient_norm, gn0, gn0_input_grad_scale, "GN (Wu et al. 2021) App. B.1"),
    GradNormMethod("gran", input_gradient_norm, gran, gran_input_grad_scale, "GraN (Bhaskara 2022) Eq. 20"),
    GradNormMethod(
        "gran-inv", input_gradient_norm, gran_inv, gran_inv_input_grad_scale, "GraN (Bhaskara 2022) §4"
    ),
    GradNormMethod("pgn", ones_minus_gradient_norm, pgn, pgn_input_grad_scale, "PGN (Xia) Algorithm 1"),
    GradNormMethod("pgn-grad", input_gradient_norm, pgn, pgn_input_grad_scale, "PGN (Xia) Eq. 10-14"),
)
for _method in _METHODS:
    GRADNORM_METHODS.register(_method.name)(_method)
