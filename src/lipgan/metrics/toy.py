"""Metrics of samples from a 2-D Gaussian mixture with known centres and a shared standard deviation σ,
as in the mode-collapse studies on rings and grids (Srivastava et al. 2017, VEEGAN, Sec. 5.1):

- `modes_covered`: components with at least one sample within 3σ of their centre;
- `hq_fraction`: share of "high-quality" samples, those within 3σ of some centre;
- `mode_kl`: KL(p̂ ‖ uniform) of the histogram p̂ of the high-quality samples over their nearest centres.

Convention for `mode_kl`: empty modes need no epsilon, since `0 · log 0 = 0` and the uniform reference
has full support; covering half of the modes evenly gives `log 2`. Without any high-quality sample the
histogram is undefined and `mode_kl` is `log K`, the value of a single covered mode.
Points, centres and σ are in the same coordinates (the dataset's).
"""

from __future__ import annotations

import math

import torch

HQ_RADIUS_IN_STDS = 3.0


def center_distances(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Euclidean distances `[N, K]` between points `[N, 2]` and centres `[K, 2]`, float64."""
    return torch.cdist(points.detach().cpu().double(), centers.detach().cpu().double())


def modes_covered(distances: torch.Tensor, radius: float) -> int:
    """Number of components with at least one sample within `radius` of their centre."""
    return int((distances <= radius).any(dim=0).sum())


def high_quality_mask(distances: torch.Tensor, radius: float) -> torch.Tensor:
    """`[N]` bool: samples within `radius` of some centre."""
    return distances.min(dim=1).values <= radius


def mode_histogram_kl(nearest: torch.Tensor, n_modes: int) -> float:
    """KL(p̂ ‖ U) = Σₖ p̂ₖ log(K p̂ₖ) of the histogram of nearest-centre indices `[M]` (terms with p̂ₖ = 0 are
    0); `log K` when M = 0 (module docstring)."""
    if nearest.numel() == 0:
        return math.log(n_modes)
    counts = torch.bincount(nearest, minlength=n_modes).double()  # [K]
    histogram = counts / counts.sum()
    occupied = histogram[histogram > 0]
    return float((occupied * torch.log(occupied * n_modes)).sum())


def toy_metrics(points: torch.Tensor, centers: torch.Tensor, std: float) -> dict[str, float]:
    """`modes_covered`, `hq_fraction` and `mode_kl` of samples `[N, 2]` from a mixture with centres `[K, 2]`
    and per-coordinate standard deviation `std` (module docstring)."""
    centers = torch.as_tensor(centers)
    distances = center_distances(points, centers)  # [N, K]
    radius = HQ_RADIUS_IN_STDS * float(std)
    high_quality = high_quality_mask(distances, radius)  # [N]
    nearest = distances[high_quality].argmin(dim=1)  # [M]
    return {
        "modes_covered": modes_covered(distances, radius),
        "hq_fraction": float(high_quality.double().mean()),
        "mode_kl": mode_histogram_kl(nearest, centers.shape[0]),
    }
