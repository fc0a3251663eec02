"""lipgan: training and studying GANs whose discriminator is kept Lipschitz.

The names re-exported here are the public contract (see README, "Use it in your own GAN").
"""

from lipgan.constraints.gradnorm import GradNormD, gradient_normalize
from lipgan.constraints.penalty import gradient_penalty
from lipgan.constraints.spectral import OutputScale, apply_spectral_norm, spectral_norm
from lipgan.losses import get_loss

__version__ = "0.1.0"

__all__ = [
    "GradNormD",
    "OutputScale",
    "apply_spectral_norm",
    "get_loss",
    "gradient_normalize",
    "gradient_penalty",
    "spectral_norm",
]
