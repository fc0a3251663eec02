"""What a probe looks at: a trained discriminator, its constrained output, samples, the loss
(docs/methods.md §10).

The probes never train and never change the networks: they run D in eval mode (spectral power iterations
frozen), take input gradients with ``torch.autograd.grad`` (no ``.grad`` is accumulated) and restore the
mode afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lipgan.constraints.gradnorm import gradient_normalize_with_raw
from lipgan.losses import Loss, get_loss

# critic(x, mode="full") -> (out [B], raw [B], grad_norm [B] or None), or an object with those attributes
Critic = Callable[..., Any]

# The constraint keys the probes read; they mirror lipgan.training.config.ConstraintConfig.
CONSTRAINT_DEFAULTS: dict[str, Any] = {
    "gradnorm": None,  # a method of lipgan.constraints.gradnorm, or None
    "tau": 1.0,  # GraN: K = 1/tau
    "eps": 0.1,
    "spectral": None,  # "sn" | "sn-strict" | "bsn" | None
    "spectral_scale": 1.0,  # SSN / BSSN scale s
    "output_scale": 1.0,  # SN†: D's output times K
}


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
        constraint: keys of :data:`CONSTRAINT_DEFAULTS` (missing keys take those defaults).
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
        """``constraint[key]``, or its default from :data:`CONSTRAINT_DEFAULTS`."""
        return self.constraint.get(key, CONSTRAINT_DEFAULTS[key])

    @property
    def gradnorm_method(self) -> str | None:
        return self.setting("gradnorm")


def unpack_scores(result: Any) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(out, raw, grad_norm)`` from a critic's result, a tuple or an object with those attributes."""
    if isinstance(result, tuple):
        return result
    return result.out, result.raw, result.grad_norm


def raw_critic(D: Callable[[Tensor], Tensor]) -> Critic:
    """The critic of an unconstrained (or only spectrally normalized) D: ``out = raw = f``."""

    def critic(x: Tensor, mode: str = "full") -> tuple[Tensor, Tensor, None]:
        raw = D(x).reshape(x.shape[0])  # [B]
        return raw, raw, None

    return critic


def gradnorm_critic(D: Callable[[Tensor], Tensor], method: str, tau: float, eps: float) -> Critic:
    """The critic of a gradient-normalized D (docs/methods.md §2): ``out = f̂``, ``raw = f``,
    ``grad_norm = n``."""

    def critic(x: Tensor, mode: str = "full") -> tuple[Tensor, Tensor, Tensor]:
        result = gradient_normalize_with_raw(D, x, method=method, tau=tau, eps=eps, mode=mode)
        return result.out, result.raw, result.grad_norm

    return critic


def critic_for(D: Callable[[Tensor], Tensor], constraint: dict) -> Critic:
    """The critic the constraint settings describe: gradient-normalized when ``constraint["gradnorm"]``
    names a method, else the raw network."""
    settings = {**CONSTRAINT_DEFAULTS, **constraint}
    if settings["gradnorm"]:
        return gradnorm_critic(D, settings["gradnorm"], settings["tau"], settings["eps"])
    return raw_critic(D)


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
        critic=critic if critic is not None else critic_for(D, constraint),
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


@contextlib.contextmanager
def eval_mode(*modules: nn.Module | None) -> Iterator[None]:
    """Put every module in eval mode (frozen power iterations, no dropout) and restore each submodule's
    own mode afterwards."""
    saved = [(m, m.training) for module in modules if module is not None for m in module.modules()]
    for module in modules:
        if module is not None:
            module.eval()
    try:
        yield
    finally:
        for m, training in saved:
            m.training = training


def value_and_input_grad(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """``(h(x) [B], ∇ₓh(x) [B, ...])`` per sample, both detached; assumes samples do not interact in ``h``."""
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        value = fn(x_in).reshape(x.shape[0])  # [B]
        (grad,) = torch.autograd.grad(value.sum(), x_in)
    return value.detach(), grad.detach()


def per_sample_norm(t: Tensor) -> Tensor:
    """``||t_i||₂`` over all non-batch dimensions, [B]."""
    return torch.linalg.vector_norm(t.flatten(1), dim=1)


def constrained_output(ctx: ProbeContext) -> Callable[[Tensor], Tensor]:
    """``x -> out`` [B], the constrained output fed to the loss (double-backward mode, exact gradients)."""
    return lambda x: unpack_scores(ctx.critic(x, mode="full"))[0]


def raw_output(ctx: ProbeContext) -> Callable[[Tensor], Tensor]:
    """``x -> f(x)`` [B], the network output."""
    return lambda x: ctx.D(x).reshape(x.shape[0])


def batched(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int = 256) -> Tensor:
    """``fn`` over ``x`` in chunks of ``batch_size``, concatenated (keeps memory flat on big grids)."""
    return torch.cat([fn(chunk) for chunk in x.split(batch_size)])
