"""Image transforms: PIL image -> float32 ``[C, H, W]`` in [−1, 1], and back to uint8 for the metrics.

A pixel ``p`` in {0, …, 255} maps to ``x = 2 p / 255 − 1`` (``ToTensor`` then ``Normalize(0.5, 0.5)``);
:func:`to_uint8` inverts it exactly on such values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torchvision import transforms as T

ImageTransform = Callable[[Image.Image], torch.Tensor]


def to_signed_unit(channels: int) -> list[Callable]:
    """``ToTensor`` (uint8 -> [0, 1]) followed by ``Normalize(0.5, 0.5)`` ([0, 1] -> [−1, 1])."""
    half = (0.5,) * channels
    return [T.ToTensor(), T.Normalize(half, half)]


def resize_then_center_crop(resolution: int) -> list[Callable]:
    """Scale the shorter side to ``resolution`` (antialiased bilinear), then cut the centre square.

    Used for LSUN and image folders, whose images vary in aspect ratio."""
    return [T.Resize(resolution, antialias=True), T.CenterCrop(resolution)]


def center_crop_then_resize(crop: int, resolution: int) -> list[Callable]:
    """Cut the centre ``crop x crop`` square, then scale it to ``resolution`` (antialiased bilinear).

    Used for CelebA, whose aligned faces sit at a fixed place in a 178x218 frame."""
    return [T.CenterCrop(crop), T.Resize((resolution, resolution), antialias=True)]


def resize_to(resolution: int) -> list[Callable]:
    """Scale a square image to ``resolution x resolution`` (antialiased bilinear), e.g. STL-10 96 -> 48."""
    return [T.Resize((resolution, resolution), antialias=True)]


def pad_to(size: int, resolution: int) -> list[Callable]:
    """Pad a ``size x size`` image with black borders to ``resolution x resolution`` (MNIST 28 -> 32)."""
    total = resolution - size
    before = total // 2
    return [T.Pad((before, before, total - before, total - before), fill=0)]


def compose(steps: Sequence[Callable], channels: int) -> ImageTransform:
    """``steps`` on the PIL image, then the conversion to float32 in [−1, 1]."""
    return T.Compose([*steps, *to_signed_unit(channels)])


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [−1, 1] -> uint8 in [0, 255]: ``round((x + 1) * 127.5)``, values outside [−1, 1]
    clipped first. Inverse of ``x = 2 p / 255 − 1`` on pixel values."""
    return ((x.detach().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
