"""scikit-learn's 8x8 handwritten digits (1,797 images, shipped inside scikit-learn: no download).

Pixel values 0…16 are scaled to [0, 1], upsampled with bilinear interpolation (``align_corners=False``) to
``resolution`` and mapped to [−1, 1]. The held-out split is fixed: a stratified 80/20
``train_test_split`` with ``random_state=0`` (1,437 train and 360 test images, every class in both).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lipgan.data.base import DATASETS, TensorDataset, pick

DIGITS_RESOLUTIONS = (8, 16, 32)
DIGITS_SPLITS = ("train", "test", "all")
DIGITS_MAX_VALUE = 16.0
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


def split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Sorted indices of ``split``: the stratified 80/20 split of ``labels`` with random_state 0."""
    from sklearn.model_selection import train_test_split

    every = np.arange(labels.shape[0])
    if split == "all":
        return every
    train, test = train_test_split(
        every, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=labels
    )
    return np.sort(train if split == "train" else test)


def upsample(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear resize of ``[N, 1, 8, 8]`` images in [0, 1] to ``[N, 1, resolution, resolution]``."""
    if images.shape[-1] == resolution:
        return images
    resized = F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return resized.clamp(0.0, 1.0)


class Digits(TensorDataset):
    """The digits as a tensor dataset: ``x`` float32 ``[N, 1, R, R]`` in [−1, 1], ``y`` labels 0–9."""

    name = "digits"
    kind = "image"
    channels = 1
    num_classes = 10

    def __init__(self, resolution: int, split: str):
        from sklearn.datasets import load_digits

        bunch = load_digits()
        keep = split_indices(bunch.target, split)
        pixels = torch.from_numpy(bunch.images[keep]).to(torch.float64) / DIGITS_MAX_VALUE  # [N, 8, 8]
        images = upsample(pixels.unsqueeze(1), resolution)  # [N, 1, R, R] in [0, 1]
        self.resolution = resolution
        self.split = split
        self.indices = torch.from_numpy(keep)  # [N] rows of load_digits()
        super().__init__((2.0 * images - 1.0).to(torch.float32), torch.from_numpy(bunch.target[keep]))


@DATASETS.register("digits")
def digits(*, root=None, resolution=None, split=None) -> Digits:
    """scikit-learn digits at ``resolution`` 16 (default), 32 or the native 8; ``split`` train (default),
    test or all. ``root`` is ignored."""
    return Digits(
        pick("digits", "resolution", resolution, DIGITS_RESOLUTIONS, 16),
        pick("digits", "split", split, DIGITS_SPLITS, "train"),
    )
