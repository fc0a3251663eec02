"""Embedded-data metrics for scikit-learn's digits: the Inception Score and the Fréchet distance computed
with a small CNN trained on the digits' train split (weights in `lipgan/assets/digits_classifier.pt`,
written by `scripts/train_digits_classifier.py`) in place of Inception-v3.

- `digits_is` = exp(E_x KL(p(y|x) ‖ p(y))) on the classifier's softmax (Salimans et al. 2016, Sec. 4),
  mean over 10 splits when every split holds at least `MIN_SPLIT_SIZE` images, else one split;
- `digits_fid` = Fréchet distance (Heusel et al. 2017, Eq. 6) between Gaussians fitted to the
  classifier's penultimate features (64-d, after ReLU).
The reference every result is compared with is the same pair for real held-out digits against the train
digits (`digits_reference`).

For class-conditional generators (docs/methods.md §9.8), `digits_conditional_metrics` adds
- `digits_cond_acc`, the share of generated digits the classifier assigns to their requested class;
- `digits_intra_fid`, the mean over the 10 classes of the Fréchet distance between the penultimate features
  of generated and of real digits of that class;
with `digits_conditional_reference` the same numbers for the held-out digits and their own labels.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lipgan.errors import MissingFileError
from lipgan.metrics.conditional import intra_frechet_distance, label_accuracy
from lipgan.metrics.frechet import frechet_distance_of_features

CLASSIFIER_RESOLUTION = 16
N_CLASSES = 10
FEATURE_DIM = 64
IS_SPLITS = 10
MIN_SPLIT_SIZE = 100
CLASSIFIER_ASSET = "digits_classifier.pt"
BATCH_SIZE = 512


def resize_images(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear, antialiased resize `[N, C, H, W] -> [N, C, r, r]` (identity at the same size)."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    size = (resolution, resolution)
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)


class DigitsClassifier(nn.Module):
    """Two 3×3 conv blocks (16, 32 channels, ReLU, 2×2 max-pool) and FC 512 → 64 → 10 on 16×16 digits.
    Inputs of any size are resized to 16×16 first, so 16² and 32² digits are both accepted."""

    def __init__(self, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # [N, 16, 8, 8]
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # [N, 32, 4, 4]
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, N_CLASSES)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features `[N, 64]` of digits `[N, 1, H, W]` in [−1, 1]."""
        return self.trunk(resize_images(images, CLASSIFIER_RESOLUTION))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits `[N, 10]`."""
        return self.head(self.embed(images))


@dataclass(frozen=True)
class DigitsSplit:
    """scikit-learn's digits at one resolution, in [−1, 1]: images `[N, 1, r, r]`, labels `[N]`."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


@functools.lru_cache(maxsize=4)
def load_digits_split(resolution: int) -> DigitsSplit:
    """The train and test digits of `lipgan.data`'s digits dataset at `resolution` (its one split and
    conversion, docs/methods.md §8), as tensors."""
    from lipgan.data.digits import Digits

    train, test = Digits(resolution, "train"), Digits(resolution, "test")
    return DigitsSplit(train.x, train.y, test.x, test.y)


@functools.lru_cache(maxsize=1)
def load_digits_classifier() -> DigitsClassifier:
    """The packaged classifier (CPU, eval mode, no gradients), loaded once per process."""
    asset = Path(__file__).resolve().parents[1] / "assets" / CLASSIFIER_ASSET
    if not asset.is_file():
        raise MissingFileError(
            f"packaged digits classifier {CLASSIFIER_ASSET} missing; run scripts/train_digits_classifier.py"
        )
    classifier = DigitsClassifier()
    classifier.load_state_dict(torch.load(asset, map_location="cpu", weights_only=True))
    return classifier.eval().requires_grad_(False)


@torch.no_grad()
def classifier_outputs(images: torch.Tensor, classifier: DigitsClassifier | None = None):
    """Penultimate features `[N, 64]` and logits `[N, 10]` (float64) of digits `[N, 1, H, W]` in [−1, 1]."""
    classifier = classifier or load_digits_classifier()
    features, logits = [], []
    for batch in images.detach().cpu().float().split(BATCH_SIZE):
        embedding = classifier.embed(batch)
        features.append(embedding)
        logits.append(classifier.head(embedding))
    return torch.cat(features).double(), torch.cat(logits).double()


def split_count(n_images: int) -> int:
    """10 splits when each holds at least `MIN_SPLIT_SIZE` images, else 1."""
    return IS_SPLITS if n_images >= IS_SPLITS * MIN_SPLIT_SIZE else 1


def classifier_score(logits: torch.Tensor, n_splits: int) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) on consecutive splits, p(y) the split's mean posterior; mean over splits
    (Salimans et al. 2016, Sec. 4)."""
    log_posteriors = torch.log_softmax(logits.double(), dim=1)  # [N, 10]
    scores = []
    for chunk in log_posteriors.tensor_split(n_splits):
        log_marginal = torch.logsumexp(chunk, dim=0) - math.log(chunk.shape[0])  # [10]
        kl = (chunk.exp() * (chunk - log_marginal)).sum(dim=1)  # [n]
        scores.append(kl.mean().exp())
    return float(torch.stack(scores).mean())


def _metrics_of_outputs(
    fake_features: torch.Tensor, fake_logits: torch.Tensor, real_features: torch.Tensor
) -> dict[str, float]:
    return {
        "digits_is": classifier_score(fake_logits, split_count(len(fake_logits))),
        "digits_fid": frechet_distance_of_features(fake_features, real_features),
    }


def digits_metrics(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """`digits_is` of generated digits `[N, 1, H, W]` and `digits_fid` against real digits `[M, 1, H, W]`."""
    fake_features, fake_logits = classifier_outputs(fake)
    real_features, _ = classifier_outputs(real)
    return _metrics_of_outputs(fake_features, fake_logits, real_features)


def digits_conditional_metrics(
    fake: torch.Tensor, fake_labels: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor
) -> dict[str, float]:
    """`digits_metrics` of generated digits `[N, 1, H, W]` of requested classes `fake_labels [N]` against
    real digits `[M, 1, H, W]` of classes `real_labels [M]`, plus `digits_cond_acc` and `digits_intra_fid`
    (docs/methods.md §9.8); one classifier pass per set."""
    fake_features, fake_logits = classifier_outputs(fake)
    real_features, _ = classifier_outputs(real)
    return {
        **_metrics_of_outputs(fake_features, fake_logits, real_features),
        "digits_cond_acc": label_accuracy(fake_logits, fake_labels),
        "digits_intra_fid": intra_frechet_distance(
            fake_features, fake_labels, real_features, real_labels, N_CLASSES
        ),
    }


def digits_reference(train_images: torch.Tensor, test_images: torch.Tensor) -> dict[str, float]:
    """The same numbers for real held-out digits against the train digits."""
    return digits_metrics(fake=test_images, real=train_images)


def digits_conditional_reference(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
) -> dict[str, float]:
    """The conditional numbers for real held-out digits (as generated digits of their own labels) against
    the train digits: `digits_cond_acc` is the classifier's test accuracy (docs/methods.md §9.8)."""
    return digits_conditional_metrics(test_images, test_labels, train_images, train_labels)


def digits_accuracy(
    images: torch.Tensor, labels: torch.Tensor, classifier: DigitsClassifier | None = None
) -> float:
    """Share of digits `[N, 1, H, W]` a classifier (default: the packaged one) labels correctly."""
    _, logits = classifier_outputs(images, classifier)
    return label_accuracy(logits, labels)
