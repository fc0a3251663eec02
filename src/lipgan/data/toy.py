"""2-D Gaussian mixtures: the "ring of 8" and "grid of 25" toy benchmarks.

Both are mixtures of K isotropic Gaussians with equal weights: pick a component ``k`` uniformly, then
``x = c_k + std * ε`` with ``ε ~ N(0, I₂)``. The label ``y`` is ``k``. The points are NOT scaled to
[−1, 1]: the ring has radius 2 and the grid spans [−4, 4]², as in the benchmarks (Metz et al. 2017,
Srivastava et al. 2017), and the 2-D MLPs used on them need no particular input range.

The stored points are drawn once from a seed, so a dataset is the same on every machine; ``split="test"``
draws them from an unrelated seed. :meth:`GaussianMixture.sample` draws fresh points.
"""

from __future__ import annotations

import math

import torch

from lipgan.data.base import (
    DATASETS,
    TensorDataset,
    no_resolution,
    pick,
    positive_float,
    positive_int,
    seeded_generator,
)

TOY_SPLITS = ("train", "test")


class GaussianMixture(TensorDataset):
    """``n`` points of the equal-weight mixture of ``N(c_k, std² I)`` over the rows of ``centers``.

    Attributes: ``centers`` float32 ``[K, 2]``, ``std`` (float), ``x`` float32 ``[n, 2]``, ``y`` int64
    ``[n]``.
    """

    kind = "points"
    channels = 2
    resolution = None

    def __init__(self, name: str, centers: torch.Tensor, std: float, n: int, seed: int, split: str):
        self.name = name
        self.split = split
        self.centers = centers.to(torch.float32)  # [K, 2]
        self.std = float(std)
        self.num_classes = centers.shape[0]
        self.seed = seed
        x, y = self.sample(n, generator=seeded_generator(seed, TOY_SPLITS.index(split)))
        super().__init__(x, y)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` fresh points ``[n, 2]`` and their component indices ``[n]``, drawn with ``generator``."""
        component = torch.randint(self.num_classes, (n,), generator=generator)  # [n]
        noise = torch.randn(n, 2, generator=generator)  # [n, 2]
        return self.centers[component] + self.std * noise, component


def ring_centers(k: int, radius: float) -> torch.Tensor:
    """``k`` points evenly spaced on the circle of ``radius``, the first at angle 0: ``[k, 2]``."""
    angle = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)  # [k]
    return radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


def grid_centers(side: int, spacing: float) -> torch.Tensor:
    """The ``side x side`` grid with step ``spacing`` centred on 0, row-major in (x, y): ``[side², 2]``.

    With side 5 and spacing 2 the coordinates are {−4, −2, 0, 2, 4}."""
    coords = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing  # [side]
    gx, gy = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def checked_mixture(
    name: str, centers: torch.Tensor, std: float, n: int, seed: int, split: str | None
) -> GaussianMixture:
    """The mixture over ``centers`` after checking the options shared by every toy set."""
    return GaussianMixture(
        name,
        centers,
        positive_float(name, "std", std),
        positive_int(name, "n", n),
        seed,
        pick(name, "split", split, TOY_SPLITS, "train"),
    )


@DATASETS.register("ring8")
def ring8(
    *,
    root=None,
    resolution=None,
    split=None,
    radius: float = 2.0,
    std: float = 0.02,
    n: int = 100_000,
    seed: int = 0,
) -> GaussianMixture:
    """8 Gaussians of std 0.02 evenly spaced on a circle of radius 2. ``root`` is ignored."""
    no_resolution("ring8", resolution)
    centers = ring_centers(8, positive_float("ring8", "radius", radius))
    return checked_mixture("ring8", centers, std, n, seed, split)


@DATASETS.register("grid25")
def grid25(
    *,
    root=None,
    resolution=None,
    split=None,
    spacing: float = 2.0,
    std: float = 0.05,
    n: int = 100_000,
    seed: int = 0,
) -> GaussianMixture:
    """25 Gaussians of std 0.05 on the grid {−4, −2, 0, 2, 4}². ``root`` is ignored."""
    no_resolution("grid25", resolution)
    centers = grid_centers(5, positive_float("grid25", "spacing", spacing))
    return checked_mixture("grid25", centers, std, n, seed, split)
