"""Consistency regularization (CR; Zhang et al. 2020, used with GN and PGN; docs/methods.md §6.2): the
augmentation T, a random horizontal flip (p = 0.5) and a random integer shift of up to `max_shift` × the image
size, with reflection padding, drawn independently per sample; and the D step's CR term built on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from lipgan.constraints.critic import critic_scores
from lipgan.errors import ConfigError

if TYPE_CHECKING:
    from lipgan.training.config import ConsistencyConfig
    from lipgan.training.regularizers import DStepBatch


def consistency_augment(
    x: torch.Tensor, max_shift: float, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`x`: [B, C, H, W] -> the augmented batch, same shape."""
    if x.dim() != 4:
        raise ConfigError("consistency regularization (cr.weight > 0) needs image data [B, C, H, W]")
    batch, _, height, width = x.shape
    device = x.device
    if flip:
        flip_mask = torch.rand(batch, generator=generator, device="cpu").lt(0.5).to(device)
        x = torch.where(flip_mask[:, None, None, None], x.flip(3), x)
    pad_h, pad_w = int(max_shift * height), int(max_shift * width)
    if pad_h == 0 and pad_w == 0:
        return x
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect")  # [B, C, H + 2ph, W + 2pw]
    dy = torch.randint(0, 2 * pad_h + 1, (batch,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad_w + 1, (batch,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + height, dx[i] : dx[i] + width] for i in range(batch)])


def consistency_term(
    options: ConsistencyConfig, d_net: torch.nn.Module, critic: Callable, batch: DStepBatch
) -> torch.Tensor:
    """The D step's CR term `λ E_real[(D̂(T(x)) − D̂(x))²]` (docs/methods.md §6.2), `λ = options.weight`.

    `D̂` is the constrained output the loss sees (`critic`, full mode); `D̂(x)` is the real half of the D
    step's own forward (`batch.scores`), so only the augmented reals take a second forward. T draws from
    `batch.generator`. Scalar.
    """
    augmented = consistency_augment(batch.real, options.max_shift, options.flip, batch.generator)
    real_scores = batch.scores.out[: batch.real.shape[0]]
    # T keeps each image's class, so the augmented reals are scored with their own labels
    augmented_scores = critic_scores(critic, augmented, mode="full", y=batch.y_real).out
    return options.weight * (augmented_scores - real_scores).square().mean()
