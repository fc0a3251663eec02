"""Generator / discriminator architectures of docs/methods.md §7, one module per family, built by name.

Every discriminator returns raw outputs `[B]` and contains no spectral normalization; the trainer
applies the configured constraint. Every generator subclasses :class:`Generator`.
"""

from __future__ import annotations

import inspect
from typing import Any

from lipgan.errors import ConfigError
from lipgan.nets import (  # noqa: F401  (registers the archs)
    biggan,
    conditional,
    dcgan,
    digits,
    digits_cond,
    mlp,
    mnist,
    resnet,
    sngan_cnn,
)
from lipgan.nets.base import (
    ARCHS,
    INIT_SCHEMES,
    Z_DISTRIBUTIONS,
    GanPair,
    Generator,
    count_parameters,
    init_weights,
)

__all__ = [
    "ARCHS",
    "INIT_SCHEMES",
    "Z_DISTRIBUTIONS",
    "GanPair",
    "Generator",
    "arch_options",
    "build_gan",
    "count_parameters",
    "init_weights",
]


def arch_options(arch: str) -> dict[str, Any]:
    """The keyword arguments the named architecture accepts, with their defaults."""
    factory = ARCHS.get(arch)
    return {name: p.default for name, p in inspect.signature(factory).parameters.items()}


def build_gan(arch: str, **kw: Any) -> GanPair:
    """Build the named (G, D) pair; unknown keywords raise a ConfigError listing the valid ones."""
    valid = arch_options(arch)
    unknown = sorted(set(kw) - set(valid))
    if unknown:
        raise ConfigError(
            f"architecture {arch!r} has no option {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
        )
    return ARCHS.get(arch)(**kw)
