"""The one default of each gradient-normalization hyperparameter, for the API, the config and the probes.

K = 1/τ ≈ 0.83 and ε = 0.1 are GraN's settings for 32² and 48² images (GraN App. A, which rounds K to 0.83);
τ only matters to gran and gran-inv. This module imports nothing, so the config can read it without torch.
"""

DEFAULT_TAU = 1.2
DEFAULT_EPS = 0.1
DEFAULT_DSTEP = "tangent"  # constraint.dstep: how a D step differentiates the norm (docs/methods.md §2.11)
