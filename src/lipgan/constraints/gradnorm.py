"""Gradient normalization of a whole discriminator: GN, GraN, PGN and their variants (docs/methods.md §2).

``gradient_normalize(D, x, method=...)`` runs ``f = D(x)``, takes the per-sample input gradient ``∇ₓf`` and
returns the normalized output ``f̂`` of the chosen method (formulas in
:mod:`lipgan.constraints.gradnorm_methods`). Two modes give the same value:

- ``"full"`` (discriminator steps): the normalization term itself is differentiated w.r.t. D's parameters
  and ``x`` (GraN, App. A; docs/methods.md §1.4). How is the ``dstep`` choice, a name in ``DSTEPS``
  (:mod:`lipgan.constraints.gradnorm_dstep`, docs/methods.md §2.11): ``"double-backward"`` takes ``∇ₓf``
  with ``create_graph=True`` (the reference); ``"tangent"`` (the default) gives the same gradients for
  piecewise-linear D in 4 passes of D instead of 6, and falls back to the reference for any other D.
- ``"generator"`` (generator steps): ``∇ₓf`` is taken without a graph, so the norm enters as a constant. The
  gradient w.r.t. ``x`` is then ``c(f, n) · ∇ₓf``, which equals the full one whenever D is piecewise linear
  (its Hessian is zero almost everywhere; docs/methods.md §2.8), and it is formed from the ``∇ₓf`` already
  taken, so D runs one forward and one backward. No gradient reaches D's parameters: never use this mode
  for a discriminator update.

Every method is exact only for piecewise-linear D (ReLU / LeakyReLU, no batch norm, no smooth activations);
the per-sample gradient is taken of ``f.sum()``, which assumes the samples of a batch do not interact in D.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from lipgan.constraints.critic import per_sample_norm, to_fp32
from lipgan.constraints.defaults import DEFAULT_EPS, DEFAULT_TAU
from lipgan.constraints.gradnorm_dstep import DEFAULT_DSTEP, DSTEPS
from lipgan.constraints.gradnorm_methods import GRADNORM_METHODS, GradNormMethod
from lipgan.errors import ConfigError
from lipgan.registry import Registry

__all__ = [
    "DEFAULT_DSTEP",
    "DSTEPS",
    "GRADNORM_METHODS",
    "GRADNORM_MODES",
    "GradNormD",
    "GradNormMethod",
    "GradNormOutput",
    "gradient_normalize",
    "gradient_normalize_with_raw",
]

# (D, x_in, d_args, d_kwargs, dstep) -> (raw output of D, ∇ₓf); x_in requires grad
Scorer = Callable[[Callable[..., Tensor], Tensor, tuple, dict, str], tuple[Tensor, Tensor]]


def score_full(D: Callable[..., Tensor], x: Tensor, d_args: tuple, d_kwargs: dict, dstep: str):
    """``f`` and ``∇ₓf`` such that a loss of both differentiates the norm (mode ``"full"``), by the D-step
    implementation ``dstep`` (``DSTEPS``)."""
    return DSTEPS.get(dstep)(D, x, d_args, d_kwargs)


class _FirstOrderScore(torch.autograd.Function):
    """``f`` whose backward sends ``w_i ∇ₓf_i`` to ``x`` from the input gradient already taken, instead of a
    second backward through D. Exact whenever D scores samples independently, the assumption of the
    per-sample gradient itself: ``∂/∂x_j Σ_i w_i f_i = w_j ∇ₓf_j``. Nothing reaches D's parameters."""

    @staticmethod
    def forward(ctx, raw: Tensor, x: Tensor, grad: Tensor):
        ctx.save_for_backward(grad)
        return raw.clone()

    @staticmethod
    def backward(ctx, w: Tensor):
        (grad,) = ctx.saved_tensors
        w = w.reshape(grad.shape[0], *([1] * (grad.dim() - 1)))  # [B, 1, ...]
        return None, (w * grad).to(grad.dtype), None


def score_first_order(D: Callable[..., Tensor], x: Tensor, d_args: tuple, d_kwargs: dict, dstep: str):
    """``∇ₓf`` per sample as a constant and ``f`` differentiable w.r.t. ``x`` only (mode ``"generator"``,
    docs/methods.md §2.8; ``dstep`` is not used): one forward and one input-gradient backward of D."""
    raw = D(x, *d_args, **d_kwargs)
    (grad,) = torch.autograd.grad(_per_sample_output(raw, x.shape[0]).sum(), x)
    return _FirstOrderScore.apply(raw.detach(), x, grad), grad


GRADNORM_MODES: Registry[Scorer] = Registry("gradient normalization mode")
GRADNORM_MODES.register("full")(score_full)
GRADNORM_MODES.register("generator")(score_first_order)


class GradNormOutput(NamedTuple):
    """What one gradient-normalized forward produces; every field has shape [B]."""

    out: Tensor  # normalized output f̂
    grad_norm: Tensor  # n = ||∇ₓf||, for every method (also pgn)
    raw: Tensor  # f, the output of the wrapped discriminator


def _check_hyperparameters(tau: float, eps: float) -> None:
    if not tau > 0:
        raise ConfigError(f"gradient normalization needs tau > 0 (K = 1/tau); got tau={tau}")
    if not eps >= 0:
        raise ConfigError(f"gradient normalization needs eps >= 0; got eps={eps}")


def _per_sample_output(raw: Tensor, batch_size: int) -> Tensor:
    """Flatten D's output to [B]; D must return [B] or [B, 1]."""
    if raw.shape not in (torch.Size([batch_size]), torch.Size([batch_size, 1])):
        raise ConfigError(
            f"the discriminator must return shape [B] or [B, 1] with B={batch_size}; got {tuple(raw.shape)}"
        )
    return raw.reshape(batch_size)


def _input_with_grad(x: Tensor) -> Tensor:
    """``x`` itself when it already requires grad (a generator output stays connected to G), else a detached
    copy that does, so the caller's tensor is never modified."""
    return x if x.requires_grad else x.detach().requires_grad_()


def _normalize(
    D: Callable[..., Tensor],
    x: Tensor,
    d_args: tuple[Any, ...],
    d_kwargs: dict[str, Any],
    method: GradNormMethod,
    scorer: Scorer,
    dstep: str,
    tau: float,
    eps: float,
) -> GradNormOutput:
    x_in = _input_with_grad(x)  # [B, ...]
    raw, grad = scorer(D, x_in, d_args, d_kwargs, dstep)  # raw [B] or [B, 1], grad [B, ...]
    f = _per_sample_output(raw, x.shape[0])  # [B]
    f, grad = to_fp32(f), to_fp32(grad)  # the norm and the formula in float32 under autocast
    divisor = method.norm(f, grad)  # [B]
    out = method.normalize(f, divisor, tau, eps)  # [B]
    grad_norm = per_sample_norm(grad)  # [B]
    return GradNormOutput(out, grad_norm, f)


def gradient_normalize_with_raw(
    D: Callable[..., Tensor],
    x: Tensor,
    *d_args: Any,
    method: str = "gn",
    tau: float = DEFAULT_TAU,
    eps: float = DEFAULT_EPS,
    mode: str = "full",
    dstep: str = DEFAULT_DSTEP,
    **d_kwargs: Any,
) -> GradNormOutput:
    """:func:`gradient_normalize`, also returning the raw output ``f`` (for logging the domain of D).

    Works under ``torch.no_grad()`` too (e.g. for probes): the input gradient is still computed, and the
    returned tensors are then detached.
    """
    method_obj = GRADNORM_METHODS.get(method)
    scorer = GRADNORM_MODES.get(mode)
    DSTEPS.get(dstep)
    _check_hyperparameters(tau, eps)
    grad_was_enabled = torch.is_grad_enabled()
    with torch.enable_grad():
        result = _normalize(D, x, d_args, d_kwargs, method_obj, scorer, dstep, tau, eps)
    if grad_was_enabled:
        return result
    return GradNormOutput(*(t.detach() for t in result))


def gradient_normalize(
    D: Callable[..., Tensor],
    x: Tensor,
    *d_args: Any,
    method: str = "gn",
    tau: float = DEFAULT_TAU,
    eps: float = DEFAULT_EPS,
    mode: str = "full",
    dstep: str = DEFAULT_DSTEP,
    **d_kwargs: Any,
) -> tuple[Tensor, Tensor]:
    """Gradient-normalize the discriminator ``D`` at ``x`` (docs/methods.md §2).

    Args:
        D: any callable ``D(x, *d_args, **d_kwargs)`` returning raw scores of shape [B] or [B, 1]; it
            should be piecewise linear in ``x`` and process samples independently.
        x: input batch [B, ...] (images [B, C, H, W], points [B, 2], ...). It may be data (no grad) or a
            generator output that requires grad through G; the result backpropagates into G in the latter
            case. ``x`` is never modified.
        d_args, d_kwargs: passed on to ``D`` (e.g. class labels ``y``).
        method: one of ``gn gn0 gn1 gran gran-inv pgn pgn-grad`` (see ``GRADNORM_METHODS``).
        tau: GraN temperature; the piecewise Lipschitz constant is ``K = 1/tau`` (ignored by GN and PGN).
        eps: GraN's ``ε`` (ignored by GN and PGN).
        mode: ``"full"`` (the norm is differentiated; use for D steps) or ``"generator"`` (no double
            backward; same value and same gradient w.r.t. ``x`` for piecewise-linear D; use for G steps
            only).
        dstep: how mode ``"full"`` differentiates the norm, a name in ``DSTEPS``: ``"tangent"`` (default;
            exact for piecewise-linear D, which it checks op by op, falling back to the reference
            otherwise) or ``"double-backward"`` (the reference). Same values and gradients either way.

    Returns:
        ``(out, grad_norm)``, both [B]: the normalized output ``f̂`` and ``n = ||∇ₓf||`` per sample (for
        every method, including ``pgn``, whose formula divides by ``||𝟙 − ∇ₓf||`` instead). ``grad_norm``
        is differentiable in ``"full"`` mode.

    Raises:
        ConfigError: unknown method or mode, ``tau <= 0``, ``eps < 0`` or an output of the wrong shape.
    """
    result = gradient_normalize_with_raw(
        D, x, *d_args, method=method, tau=tau, eps=eps, mode=mode, dstep=dstep, **d_kwargs
    )
    return result.out, result.grad_norm


class GradNormD(nn.Module):
    """A discriminator wrapped by a gradient normalization (docs/methods.md §2).

    ``GradNormD(D, method="gran", tau=1/0.83, eps=0.1)`` is GraN with piecewise Lipschitz constant
    ``K = 1/tau = 0.83`` (GraN App. A default for 32² images). ``forward(x, *args, mode="full", **kw)``
    returns ``f̂`` [B], as :func:`gradient_normalize`; ``last_grad_norm`` (n) and ``last_raw`` (f), both [B]
    and detached, hold the values of the last call.
    """

    def __init__(
        self,
        D: Callable[..., Tensor],
        method: str = "gran",
        tau: float = DEFAULT_TAU,
        eps: float = DEFAULT_EPS,
        dstep: str = DEFAULT_DSTEP,
    ):
        super().__init__()
        GRADNORM_METHODS.get(method)
        DSTEPS.get(dstep)
        _check_hyperparameters(tau, eps)
        self.dstep = dstep
        self.D = D
        self.method = method
        self.tau = tau
        self.eps = eps
        self.last_grad_norm: Tensor | None = None
        self.last_raw: Tensor | None = None

    def forward(self, x: Tensor, *args: Any, mode: str = "full", **kwargs: Any) -> Tensor:
        result = gradient_normalize_with_raw(
            self.D,
            x,
            *args,
            method=self.method,
            tau=self.tau,
            eps=self.eps,
            mode=mode,
            dstep=self.dstep,
            **kwargs,
        )
        self.last_grad_norm = result.grad_norm.detach()
        self.last_raw = result.raw.detach()
        return result.out

    def extra_repr(self) -> str:
        return f"method={self.method!r}, tau={self.tau}, eps={self.eps}, dstep={self.dstep!r}"
