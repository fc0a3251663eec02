"""The NaN guard: after every update, one fused finiteness check of the loss and of the updated net.

`torch._foreach_norm` with `ord=inf` gives each tensor's largest absolute value in one fused pass, and NaN or
inf in any element carries through to it, so `isfinite` over those maxima (and the loss) answers "is anything
non-finite?" with a single device-to-host transfer per update. Floating buffers (spectral-norm vectors,
batch-norm statistics) are checked with the parameters, because a poisoned `u` poisons every later step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


def state_tensors(module: nn.Module) -> list[torch.Tensor]:
    """The parameters and floating-point buffers of `module`: everything a checkpoint of it holds."""
    tensors = [p.detach() for p in module.parameters()]
    tensors += [b for b in module.buffers() if b.is_floating_point()]
    return tensors


def all_finite(tensors: Iterable[torch.Tensor], scalars: Iterable[torch.Tensor] = ()) -> bool:
    """True when every element of `tensors` and every scalar in `scalars` is finite (one host sync)."""
    tensors = [t for t in tensors if t.numel()]
    maxima = list(torch._foreach_norm(tensors, math.inf)) if tensors else []
    values = [m.reshape(()).float() for m in maxima] + [s.detach().reshape(()).float() for s in scalars]
    if not values:
        return True
    return bool(torch.stack([v.to(values[0].device) for v in values]).isfinite().all())


def module_is_finite(module: nn.Module) -> bool:
    return all_finite(state_tensors(module))


def first_nonfinite(named: dict[str, torch.Tensor]) -> str | None:
    """The first name in `named` whose tensor holds a NaN or inf (the guard's slow path, for the message)."""
    for name, value in named.items():
        if not bool(torch.isfinite(value.detach()).all()):
            return name
    return None
