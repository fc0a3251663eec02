"""lipgan: training and studying GANs whose discriminator is kept Lipschitz.

The names re-exported here are the public contract (see README, "Use it in your own GAN"). They are loaded
on first use (PEP 562), so that `lipgan --help` and Ctrl-C at start-up do not wait for torch to import.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "GradNormD": "lipgan.constraints.gradnorm",
    "gradient_normalize": "lipgan.constraints.gradnorm",
    "gradient_penalty": "lipgan.constraints.penalty",
    "OutputScale": "lipgan.constraints.spectral",
    "apply_spectral_norm": "lipgan.constraints.spectral",
    "spectral_norm": "lipgan.constraints.spectral",
    "get_loss": "lipgan.losses",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lipgan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
