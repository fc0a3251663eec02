"""The pieces the metrics of class-conditional generators share (docs/methods.md §9.8): the balanced labels
requested from a conditional sampler, the sampler seen as an unconditional one, the labels of a real
dataset and the intra-class Fréchet distance.

A conditional sampler is `cond_sample_fn(n, labels) -> [n, ...]`, `labels` int64 `[n]` on the CPU, returning
samples of the requested classes in the dataset's convention.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from lipgan.errors import ConfigError
from lipgan.metrics.frechet import ArrayLike, as_float64, frechet_distance_of_features

CondSampleFn = Callable[[int, torch.Tensor], torch.Tensor]
MIN_PER_CLASS = 2  # a covariance needs two samples


def balanced_count(n_samples: int, num_classes: int) -> int:
    """`n_samples` rounded down to a multiple of `num_classes`; a `ConfigError` when that leaves none."""
    if num_classes < 1:
        raise ConfigError(f"a conditional evaluation needs num_classes >= 1, got {num_classes}")
    if n_samples < num_classes:
        raise ConfigError(
            f"n_samples={n_samples} is smaller than num_classes={num_classes}: not one sample per class"
        )
    return n_samples // num_classes * num_classes


def balanced_labels(n_samples: int, num_classes: int) -> torch.Tensor:
    """int64 `[n]`, `n = n_samples` rounded down to a multiple of `num_classes`: every class
    `n_samples // num_classes` times, in cyclic order `0, 1, …, K−1, 0, 1, …`, so that every run of `K`
    consecutive labels is balanced too (protocols use the first `n_fake` samples of a draw, and the IS
    splits are consecutive); docs/methods.md §9.8."""
    per_class = balanced_count(n_samples, num_classes) // num_classes
    return torch.arange(num_classes, dtype=torch.int64).repeat(per_class)


def labelled_sampler(cond_sample_fn: CondSampleFn, labels: torch.Tensor) -> Callable[[int], torch.Tensor]:
    """`sample_fn(n)` that asks `cond_sample_fn` for the next `n` of `labels`, in order; asking for more
    samples than there are labels is a bug and raises `RuntimeError`."""
    position = [0]

    def sample(n: int) -> torch.Tensor:
        start, stop = position[0], position[0] + n
        if stop > len(labels):
            raise RuntimeError(f"asked for samples {start}..{stop} of {len(labels)} labelled ones")
        position[0] = stop
        return cond_sample_fn(n, labels[start:stop])

    return sample


def dataset_labels(dataset: Dataset, indices: torch.Tensor | None = None) -> torch.Tensor:
    """int64 labels `[n]` of the items `indices` (default: all) of a dataset of `(x, y)` pairs, read from
    its label array when it keeps one (`y` of tensor datasets, `labels` of CIFAR, STL-10 and image folders,
    `source.targets` of MNIST), else item by item."""
    stored = getattr(dataset, "y", None)
    if stored is None:
        stored = getattr(dataset, "labels", None)
    if stored is None:
        stored = getattr(getattr(dataset, "source", None), "targets", None)
    if indices is None:
        indices = torch.arange(len(dataset))  # type: ignore[arg-type]
    if stored is not None:
        return torch.as_tensor(np.asarray(stored), dtype=torch.int64)[indices]
    return torch.tensor([int(dataset[int(i)][1]) for i in indices], dtype=torch.int64)


def check_labels(labels: torch.Tensor, num_classes: int, what: str) -> None:
    """A `ConfigError` unless every label lies in `0 … num_classes − 1` (unlabeled data holds −1)."""
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ConfigError(
            f"{what} holds labels outside 0..{num_classes - 1} (min {int(labels.min())}, max "
            f"{int(labels.max())}); per-class metrics need data labelled with the generator's classes"
        )


def per_class_frechet_distances(
    features1: ArrayLike, labels1: torch.Tensor, features2: ArrayLike, labels2: torch.Tensor, num_classes: int
) -> list[float]:
    """The Fréchet distance (docs/methods.md §9.1) between the rows of class `k` of `features1 [N₁, D]`
    and of `features2 [N₂, D]`, for `k = 0 … K−1`; a `ConfigError` when a class has fewer than two rows."""
    features1, features2 = as_float64(features1), as_float64(features2)
    labels1, labels2 = labels1.cpu(), labels2.cpu()
    distances = []
    for k in range(num_classes):
        rows1, rows2 = features1[labels1 == k], features2[labels2 == k]  # [n₁ₖ, D], [n₂ₖ, D]
        if min(len(rows1), len(rows2)) < MIN_PER_CLASS:
            raise ConfigError(
                f"class {k} has {len(rows1)} generated and {len(rows2)} real samples; intra-class FID "
                f"needs at least {MIN_PER_CLASS} of each"
            )
        distances.append(frechet_distance_of_features(rows1, rows2))
    return distances


def intra_frechet_distance(
    features1: ArrayLike, labels1: torch.Tensor, features2: ArrayLike, labels2: torch.Tensor, num_classes: int
) -> float:
    """Intra-class Fréchet distance: the mean over the `K` classes of the per-class distances
    (Miyato & Koyama 2018; docs/methods.md §9.8)."""
    distances = per_class_frechet_distances(features1, labels1, features2, labels2, num_classes)
    return sum(distances) / num_classes


def label_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows of `logits [N, K]` whose arg-max is the row's label (docs/methods.md §9.8)."""
    return float((logits.argmax(dim=1).cpu() == labels.cpu()).double().mean())
