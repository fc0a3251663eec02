"""The augmentation T of consistency regularization (Zhang et al. 2020, used with GN and PGN):
a random horizontal flip (p = 0.5) and a random integer shift of up to `max_shift` × the image size, with
reflection padding, drawn independently per sample."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lipgan.errors import ConfigError


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
