"""Datasets: embedded ones (2-D Gaussian mixtures, scikit-learn digits) and real ones read from the
user's files (CIFAR-10/100, STL-10, MNIST, CelebA, LSUN, any image folder).

``get_dataset(name, root, resolution, split, **options)`` returns a map-style dataset of ``(x, y)``:
images are float32 ``[C, H, W]`` in [−1, 1], points float32 ``[2]``; ``y`` is the class, or −1.
:class:`BatchStream` turns one into endless, seeded, resumable (and rank-sharded) batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lipgan.data import celeba, digits, folder, lsun, real, toy  # noqa: F401  (register the datasets)
from lipgan.data.base import DATASETS, UNLABELED, LipganDataset, TensorDataset, check_options, option_names
from lipgan.data.stream import BatchStream, infinite_loader
from lipgan.data.toy import GaussianMixture
from lipgan.data.transforms import to_uint8


def get_dataset(
    name: str,
    root: str | Path | None = None,
    resolution: int | None = None,
    split: str | None = None,
    download: bool = False,
    **options: Any,
) -> LipganDataset:
    """The dataset ``name`` (see ``DATASETS.names()``).

    ``root`` is the folder holding a real dataset's files (default ``./data``; the image folder itself for
    ``folder``); ``resolution`` and ``split`` default per dataset (e.g. STL-10: 48, ``unlabeled``;
    CelebA: 64, ``all``; most others ``train``). ``download=True`` fetches missing files through
    torchvision where it can (CIFAR-10/100, STL-10, MNIST); the other datasets ignore it (they are embedded,
    or have no automatic download and their MissingFileError says where to get them). ``options`` are the
    dataset's own keywords (e.g. ``std=0.05``). Unknown names, options, resolutions or splits raise
    ConfigError listing the valid ones; missing files raise MissingFileError saying where they should be.
    """
    builder = DATASETS.get(name)
    check_options(name, builder, options)
    if "download" in option_names(builder):
        options["download"] = download
    return builder(root=root, resolution=resolution, split=split, **options)


__all__ = [
    "DATASETS",
    "UNLABELED",
    "BatchStream",
    "GaussianMixture",
    "LipganDataset",
    "TensorDataset",
    "get_dataset",
    "infinite_loader",
    "option_names",
    "to_uint8",
]
