"""Trains the digits classifier behind `digits_is` / `digits_fid` and writes its state dict to
`src/lipgan/assets/digits_classifier.pt`.

Deterministic on CPU (fixed seeds, one thread), under a minute. It trains on the train split only, at 16²
and at 32² (the classifier resizes its input to 16², so it sees both resamplings), with random shifts of
up to one pixel, and prints the held-out accuracy at both resolutions; it fails when either is below 97%.

    python scripts/train_digits_classifier.py [--out PATH] [--epochs N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lipgan.metrics.digits import (
    CLASSIFIER_RESOLUTION,
    DigitsClassifier,
    digits_accuracy,
    load_digits_split,
    resize_images,
)

RESOLUTIONS = (16, 32)
REQUIRED_ACCURACY = 0.97
BATCH_SIZE = 64
PEAK_LR = 3e-3
WEIGHT_DECAY = 1e-4
MAX_SHIFT = 1
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "lipgan" / "assets" / "digits_classifier.pt"


def training_set() -> tuple[torch.Tensor, torch.Tensor]:
    """Train-split digits at every resolution, resized to the classifier's 16² input: `[2N, 1, 16, 16]`."""
    splits = [load_digits_split(resolution) for resolution in RESOLUTIONS]
    images = torch.cat([resize_images(split.train_images, CLASSIFIER_RESOLUTION) for split in splits])
    labels = torch.cat([split.train_labels for split in splits])
    return images, labels


def random_shift(images: torch.Tensor, rng: torch.Generator, max_shift: int = MAX_SHIFT) -> torch.Tensor:
    """Shifts each image `[N, 1, H, W]` by up to `max_shift` pixels per axis, filling with background −1."""
    n, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4, value=-1.0)  # [N, 1, H + 2s, W + 2s]
    offset_y = torch.randint(0, 2 * max_shift + 1, (n,), generator=rng)
    offset_x = torch.randint(0, 2 * max_shift + 1, (n,), generator=rng)
    rows = offset_y[:, None] + torch.arange(height)  # [N, H]
    cols = offset_x[:, None] + torch.arange(width)  # [N, W]
    sample = torch.arange(n)[:, None, None]
    return padded[sample, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)  # [N, 1, H, W]


def train(epochs: int, seed: int) -> DigitsClassifier:
    """Adam with a one-cycle learning rate on cross-entropy, shifted mini-batches of 64 in a seeded order."""
    torch.manual_seed(seed)
    model = DigitsClassifier()
    images, labels = training_set()
    batches_per_epoch = -(-len(labels) // BATCH_SIZE)
    optimizer = torch.optim.Adam(model.parameters(), lr=PEAK_LR, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, PEAK_LR, total_steps=epochs * batches_per_epoch)
    rng = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=rng).split(BATCH_SIZE):
            loss = F.cross_entropy(model(random_shift(images[batch], rng)), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    model = train(args.epochs, args.seed)
    accuracies = {}
    for resolution in RESOLUTIONS:
        split = load_digits_split(resolution)
        accuracies[resolution] = digits_accuracy(split.test_images, split.test_labels, model)
        print(f"held-out accuracy at {resolution}x{resolution}: {accuracies[resolution]:.4f}")
    print(f"trained in {time.perf_counter() - start:.1f} s")
    if min(accuracies.values()) < REQUIRED_ACCURACY:
        print(f"accuracy below {REQUIRED_ACCURACY}; weights not written", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({name: tensor.contiguous() for name, tensor in model.state_dict().items()}, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
