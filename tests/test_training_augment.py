"""The augmentation T of consistency regularization (docs/methods.md §6.2): a per-sample horizontal flip with
probability 0.5 and a per-sample integer shift of up to `max_shift` × the image size, reflection-padded."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lipgan.errors import ConfigError
from lipgan.training.augment import consistency_augment


def images(n: int = 32, size: int = 10) -> torch.Tensor:
    """Distinct pixel values, so that every flip and shift can be told apart: [n, 2, size, size]."""
    return torch.arange(n * 2 * size * size, dtype=torch.float64).view(n, 2, size, size)


def test_nothing_to_do_returns_the_batch():
    x = images()
    assert torch.equal(consistency_augment(x, 0.0, flip=False), x)


def test_flip_alone_flips_about_half_of_the_samples_and_nothing_else():
    x = images(64)
    out = consistency_augment(x, 0.0, flip=True, generator=torch.Generator().manual_seed(0))
    flipped = [bool(torch.equal(o, s.flip(2))) for o, s in zip(out, x)]
    kept = [bool(torch.equal(o, s)) for o, s in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept))  # each sample is itself or its mirror image
    assert 20 <= sum(flipped) <= 44  # p = 0.5 over 64 samples (±3 standard deviations)


@pytest.mark.parametrize("max_shift", [0.1, 0.25])
def test_shift_alone_cuts_a_window_of_the_reflection_padded_sample(max_shift):
    size = 10
    pad = int(max_shift * size)
    x = images(48, size)
    out = consistency_augment(x, max_shift, flip=False, generator=torch.Generator().manual_seed(1))
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    shifts = set()
    for o, p in zip(out, padded):
        found = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(o, p[:, dy : dy + size, dx : dx + size])
        ]
        assert len(found) == 1
        shifts.add(found[0])
    # the offsets vary per sample and reach every value from −pad to +pad in both directions
    assert {dy for dy, _ in shifts} == {dx for _, dx in shifts} == set(range(2 * pad + 1))


def test_the_same_generator_state_gives_the_same_batch():
    x = images()
    first = consistency_augment(x, 0.2, True, torch.Generator().manual_seed(5))
    again = consistency_augment(x, 0.2, True, torch.Generator().manual_seed(5))
    other = consistency_augment(x, 0.2, True, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_points_are_refused_with_one_line():
    with pytest.raises(ConfigError, match=r"needs image data \[B, C, H, W\]"):
        consistency_augment(torch.zeros(4, 2), 0.2)
