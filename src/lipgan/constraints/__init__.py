"""How the discriminator is kept Lipschitz: gradient normalizations, spectral normalizations, penalties."""
