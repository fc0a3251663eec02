"""The critic: what the loss sees of a (constrained) discriminator, and the per-sample input-gradient norm.

A critic is `critic(x, mode="full", y=None) -> CriticOutput(out, raw, grad_norm)`: `out` [B] is the
constrained output fed to the loss, `raw` [B] is the network output f, and `grad_norm` [B] is
`n = ||∇ₓ f||₂` where the constraint computed it (None otherwise). The trainer's D and G steps, `load_run`
and every probe build their critic here, from the constraint settings (`gradnorm`, `tau`, `eps`; a
`ConstraintConfig` or a mapping).
For a class-conditional D, `y` [B] holds each sample's label and the critic is that of `D_y(x) = D(x, y)`:
every per-sample quantity, the input gradient included, is the one of the sample's own class (GN Eq. 16;
docs/methods.md §2.12). The gradient is taken with respect to x only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lipgan.constraints.defaults import DEFAULT_DSTEP, DEFAULT_EPS, DEFAULT_TAU
from lipgan.registry import Registry


@dataclass
class CriticOutput:
    out: Tensor  # [B] the constrained output the loss sees
    raw: Tensor  # [B] the network output f
    grad_norm: Tensor | None  # [B] ||∇ₓ f||, where the constraint computed it

    def __iter__(self):  # `out, raw, grad_norm = critic(x)` reads as well as the attributes
        return iter((self.out, self.raw, self.grad_norm))


Critic = Callable[..., CriticOutput]


LOW_PRECISION = (torch.bfloat16, torch.float16)


def to_fp32(t: Tensor) -> Tensor:
    """`t` in float32 when autocast made it bf16 or fp16; float32 and float64 tensors stay as they are.
    The critic's outputs, the per-sample norm and the normalization formulas run in float32 under mixed
    precision (docs/methods.md §2.10)."""
    return t.float() if t.dtype in LOW_PRECISION else t


def with_labels(net: Callable[..., Tensor], y: Tensor | None) -> Callable[[Tensor], Tensor]:
    """`x -> net(x, y)`: the class-conditional D with its labels bound (`D_y`); `net` itself when `y` is
    None. The labels are constants, so anything differentiated through it is w.r.t. x and the weights."""
    if y is None:
        return net
    return lambda x: net(x, y)


def per_sample_norm(t: Tensor) -> Tensor:
    """`||t_i||₂` over every non-batch dimension: [B, ...] -> [B] (the norm `n` of docs/methods.md)."""
    return torch.linalg.vector_norm(t.flatten(1), dim=1)


def value_and_input_grad(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """`(h(x) [B], ∇ₓh(x) [B, ...])` per sample, both detached; assumes samples do not interact in `h`."""
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        value = fn(x_in).reshape(x.shape[0])  # [B]
        (grad,) = torch.autograd.grad(value.sum(), x_in)
    return value.detach(), grad.detach()


def input_grad_norm(
    net: Callable[[Tensor], Tensor], x: Tensor, create_graph: bool = False, loss_scale: float = 1.0
) -> Tensor:
    """`||∇ₓ f(x)||₂` per sample, [B]. Without `create_graph` nothing is kept; with it (gradient penalties)
    `x` must require grad and the norm stays differentiable.

    `loss_scale` is fp16's GradScaler scale (docs/methods.md §2.10): the gradient is taken of the scaled
    output, so that it does not underflow in fp16's backward, and divided by the scale before the norm, as
    PyTorch's AMP recipe for gradient penalties does. The scale is a power of two, so in float32 this
    changes no bit of the result."""
    if not create_graph:
        return per_sample_norm(value_and_input_grad(net, x)[1])
    out = to_fp32(net(x).reshape(x.shape[0]))
    scaled = out.sum() if loss_scale == 1.0 else out.sum() * loss_scale
    (grad,) = torch.autograd.grad(scaled, x, create_graph=True)
    return per_sample_norm(to_fp32(grad) if loss_scale == 1.0 else to_fp32(grad) / loss_scale)


def _setting(constraint: Any, key: str) -> Any:
    """A constraint setting from a ConstraintConfig or a mapping; a missing one takes the one default."""
    defaults = {"gradnorm": None, "tau": DEFAULT_TAU, "eps": DEFAULT_EPS, "dstep": DEFAULT_DSTEP}
    if constraint is None:
        return defaults[key]
    if isinstance(constraint, Mapping):
        return constraint.get(key, defaults[key])
    return getattr(constraint, key)  # a ConstraintConfig has every key; anything else is a mistake


CRITIC_HEADS: Registry[Callable[[nn.Module, Any], Critic]] = Registry("critic head")


@CRITIC_HEADS.register("raw")
def raw_head(net: Callable[[Tensor], Tensor], constraint: Any = None) -> Critic:
    """D as it is (possibly spectrally normalized and output-scaled): `out = raw = f`."""

    def critic(x: Tensor, mode: str = "full", y: Tensor | None = None) -> CriticOutput:
        raw = to_fp32(with_labels(net, y)(x).reshape(x.shape[0]))
        return CriticOutput(raw, raw, None)

    return critic


@CRITIC_HEADS.register("gradnorm")
def gradnorm_head(net: Callable[[Tensor], Tensor], constraint: Any) -> Critic:
    """D wrapped by a gradient normalization (docs/methods.md §1: GN, GraN, PGN and variants)."""
    from lipgan.constraints.gradnorm import gradient_normalize_with_raw

    method, tau, eps, dstep = (_setting(constraint, key) for key in ("gradnorm", "tau", "eps", "dstep"))

    def critic(x: Tensor, mode: str = "full", y: Tensor | None = None) -> CriticOutput:
        labels = () if y is None else (y,)  # D(x, y): the labels reach D as its extra argument
        scored = gradient_normalize_with_raw(
            net, x, *labels, method=method, tau=tau, eps=eps, mode=mode, dstep=dstep
        )
        return CriticOutput(scored.out, scored.raw, scored.grad_norm)

    return critic


def build_critic(net: Callable[[Tensor], Tensor], constraint: Any = None) -> Critic:
    """The critic the constraint settings describe: gradient-normalized when `gradnorm` names a method."""
    return CRITIC_HEADS.get("gradnorm" if _setting(constraint, "gradnorm") else "raw")(net, constraint)


def critic_scores(critic: Critic, x: Tensor, mode: str = "full", y: Tensor | None = None) -> CriticOutput:
    """A critic's result as a CriticOutput, also from a user's critic that returns a plain tuple (a user's
    critic is called with `y` only when there are labels)."""
    result = critic(x, mode=mode) if y is None else critic(x, mode=mode, y=y)
    return result if isinstance(result, CriticOutput) else CriticOutput(*result)
