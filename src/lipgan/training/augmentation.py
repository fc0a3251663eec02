"""Augmentation of what D sees, a registry under `data.augment` (docs/methods.md §6.6):

- `none`: nothing.
- `flip`: each real image is mirrored left-right with probability 0.5, before the D step. GNGAN, EDGAN (PGN)
  and Faster-GNGAN always do this on CIFAR, STL, CelebA-HQ and LSUN. Fakes are not flipped: G learns the
  flipped distribution, which for these sets is the data's own.
- `diffaug`: DiffAugment (Zhao et al. 2020, policy "color,translation,cutout") on every image D sees, real
  and fake, in the D step and the G step, differentiably, so that G's gradient passes through it.

Draws come from the run's auxiliary generator (checkpointed, so resume stays exact) and are independent per
sample; `none` draws nothing, so runs without augmentation keep their trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lipgan.registry import Registry

Transform = Callable[[Tensor, "torch.Generator | None"], Tensor]


def identity(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return x


def _uniform(batch: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """U[0, 1) per sample, drawn on the CPU generator, shaped [B, 1, 1, 1] on `like`'s device and dtype."""
    return torch.rand(batch, 1, 1, 1, generator=generator).to(like.device, like.dtype)


def random_flip(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Mirror each image of `x` [B, C, H, W] left-right with probability 0.5."""
    flip = torch.rand(x.shape[0], generator=generator).lt(0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def rand_brightness(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """DiffAugment colour, 1/3: `x + (u − 0.5)`, u ~ U[0, 1) per sample."""
    return x + (_uniform(x.shape[0], generator, x) - 0.5)


def rand_saturation(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """DiffAugment colour, 2/3: each pixel's deviation from its channel mean scaled by 2u."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x.shape[0], generator, x) * 2.0) + mean


def rand_contrast(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """DiffAugment colour, 3/3: the deviation from the image mean scaled by u + 0.5."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x.shape[0], generator, x) + 0.5) + mean


def rand_translation(x: Tensor, generator: torch.Generator | None = None, ratio: float = 0.125) -> Tensor:
    """DiffAugment translation: shift by up to `ratio` × the size (rounded) in each direction, zero fill."""
    batch, _, height, width = x.shape
    shift_h, shift_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-shift_h, shift_h + 1, (batch, 1, 1), generator=generator).to(x.device)
    dx = torch.randint(-shift_w, shift_w + 1, (batch, 1, 1), generator=generator).to(x.device)
    b, gy, gx = torch.meshgrid(
        torch.arange(batch, device=x.device),
        torch.arange(height, device=x.device),
        torch.arange(width, device=x.device),
        indexing="ij",
    )
    gy = (gy + dy + 1).clamp(0, height + 1)
    gx = (gx + dx + 1).clamp(0, width + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # [B, H + 2, W + 2, C], a zero border
    return padded[b, gy, gx].permute(0, 3, 1, 2).contiguous()


def rand_cutout(x: Tensor, generator: torch.Generator | None = None, ratio: float = 0.5) -> Tensor:
    """DiffAugment cutout: zero a square of `ratio` × the size (rounded) at a random centre."""
    batch, _, height, width = x.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    oy = torch.randint(0, height + (1 - cut_h % 2), (batch, 1, 1), generator=generator).to(x.device)
    ox = torch.randint(0, width + (1 - cut_w % 2), (batch, 1, 1), generator=generator).to(x.device)
    b, gy, gx = torch.meshgrid(
        torch.arange(batch, device=x.device),
        torch.arange(cut_h, device=x.device),
        torch.arange(cut_w, device=x.device),
        indexing="ij",
    )
    gy = (gy + oy - cut_h // 2).clamp(0, height - 1)
    gx = (gx + ox - cut_w // 2).clamp(0, width - 1)
    mask = torch.ones(batch, height, width, dtype=x.dtype, device=x.device)
    mask[b, gy, gx] = 0
    return x * mask.unsqueeze(1)


DIFFAUG_POLICY = (rand_brightness, rand_saturation, rand_contrast, rand_translation, rand_cutout)


def diff_augment(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """DiffAugment's "color,translation,cutout" on `x` [B, C, H, W], in the official order."""
    for op in DIFFAUG_POLICY:
        x = op(x, generator)
    return x


@dataclass(frozen=True)
class Augmentation:
    """`reals` is applied to each real batch before the D step; `d_input` to everything D sees (the D
    step's concatenated reals and fakes, and the G step's fakes)."""

    name: str
    reals: Transform
    d_input: Transform
    mirrors: bool  # whether it flips images left-right (wrong for data that is not mirror-symmetric)


AUGMENTS: Registry[Augmentation] = Registry("augmentation")
AUGMENTS.register("none")(Augmentation("none", identity, identity, mirrors=False))
AUGMENTS.register("flip")(Augmentation("flip", random_flip, identity, mirrors=True))
AUGMENTS.register("diffaug")(Augmentation("diffaug", identity, diff_augment, mirrors=False))
