"""The embedded-digits metrics: packaged classifier, classifier score and Fréchet distance, evaluator."""

from pathlib import Path

import pytest
import torch
from torch_fidelity.metric_isc import isc_features_to_metric

import lipgan.metrics.digits as digits_module
from lipgan.errors import ConfigError
from lipgan.metrics import EVALUATORS, evaluator_kind
from lipgan.metrics.digits import (
    classifier_outputs,
    classifier_score,
    digits_accuracy,
    digits_metrics,
    digits_reference,
    load_digits_split,
    split_count,
)
from lipgan.metrics.frechet import frechet_distance_of_features


class DigitsStandIn:
    """What the evaluator reads from the digits dataset."""

    name, kind, channels = "digits", "image", 1

    def __init__(self, resolution: int):
        self.resolution = resolution


@pytest.mark.parametrize("resolution", [16, 32])
def test_packaged_classifier_reaches_97_percent_on_held_out_digits(resolution):
    split = load_digits_split(resolution)
    accuracy = digits_accuracy(split.test_images, split.test_labels)
    assert 0.97 <= accuracy <= 1.0


def test_packaged_weights_are_small():
    asset = Path(digits_module.__file__).resolve().parents[1] / "assets" / digits_module.CLASSIFIER_ASSET
    assert 10_000 < asset.stat().st_size < 400_000


def test_split_follows_the_dataset_conventions():
    split = load_digits_split(16)
    assert split.train_images.shape == (1437, 1, 16, 16) and split.test_images.shape == (360, 1, 16, 16)
    assert split.train_images.min() >= -1.0 and split.train_images.max() <= 1.0
    counts = torch.bincount(split.test_labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: 10 classes of ~180 digits, 20% held out


def test_split_matches_lipgan_data_digits_when_present(tmp_path):
    data = pytest.importorskip("lipgan.data")
    split = load_digits_split(32)
    for name, images, labels in [
        ("train", split.train_images, split.train_labels),
        ("test", split.test_images, split.test_labels),
    ]:
        dataset = data.get_dataset("digits", str(tmp_path), 32, name)
        assert torch.equal(torch.stack([dataset[i][0] for i in range(len(dataset))]), images)
        assert torch.equal(torch.tensor([int(dataset[i][1]) for i in range(len(dataset))]), labels)


def test_classifier_score_matches_torch_fidelity_formula():
    logits = torch.randn(1000, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    ours = classifier_score(logits, 10)
    reference = isc_features_to_metric(logits, splits=10, shuffle=False)["inception_score_mean"]
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=0.0)


def test_classifier_score_extremes():
    confident = torch.eye(10, dtype=torch.float64).repeat(20, 1) * 200.0  # one-hot posteriors, all classes
    torch.testing.assert_close(classifier_score(confident, 1), 10.0, rtol=1e-12, atol=0.0)
    identical = torch.randn(1, 10, dtype=torch.float64).repeat(50, 1)  # p(y|x) = p(y)
    torch.testing.assert_close(classifier_score(identical, 1), 1.0, rtol=0.0, atol=1e-12)
    assert split_count(999) == 1 and split_count(1000) == 10


def test_digits_metrics_of_a_set_against_itself():
    images = load_digits_split(16).train_images[:400]
    metrics = digits_metrics(images, images)
    assert abs(metrics["digits_fid"]) <= 1e-9
    _, logits = classifier_outputs(images)
    assert metrics["digits_is"] == classifier_score(logits, 1)


def test_digits_fid_is_the_frechet_distance_of_penultimate_features():
    split = load_digits_split(32)
    fake, real = -split.test_images[:300], split.train_images
    fake_features, _ = classifier_outputs(fake)
    real_features, _ = classifier_outputs(real)
    assert fake_features.shape == (300, digits_module.FEATURE_DIM)
    metrics = digits_metrics(fake, real)
    assert metrics["digits_fid"] == frechet_distance_of_features(fake_features, real_features)
    reference = digits_reference(split.train_images, split.test_images)
    assert metrics["digits_fid"] > 10 * reference["digits_fid"] > 0  # inverted digits are far from digits
    assert 1.0 <= reference["digits_is"] <= 10.0  # IS lies between 1 and the number of classes


def test_digits_evaluator_on_real_held_out_digits_reproduces_the_reference():
    split = load_digits_split(16)
    position = [0]

    def sample_test_digits(n):
        batch = split.test_images[position[0] : position[0] + n]
        position[0] += n
        return batch

    dataset = DigitsStandIn(16)
    assert evaluator_kind(dataset) == "digits"
    result = EVALUATORS.get("digits")(sample_test_digits, dataset, len(split.test_images))
    assert set(result) == {"digits_is", "digits_fid", "digits_is_real", "digits_fid_real"}
    assert result["digits_is"] == result["digits_is_real"]
    assert result["digits_fid"] == result["digits_fid_real"]
    with pytest.raises(ConfigError, match="takes no options"):
        EVALUATORS.get("digits")(sample_test_digits, dataset, 10, protocol="quick")


def test_unknown_evaluator_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="digits, image, points"):
        EVALUATORS.get("audio")


def test_digits_is_takes_ten_splits_once_each_holds_the_minimum():
    """docs/methods.md §9.5: 10 splits when every split holds at least MIN_SPLIT_SIZE images, else 1."""
    threshold = digits_module.IS_SPLITS * digits_module.MIN_SPLIT_SIZE
    assert (digits_module.IS_SPLITS, digits_module.MIN_SPLIT_SIZE) == (10, 100)
    assert split_count(threshold) == 10 and split_count(threshold - 1) == 1
    images = load_digits_split(16).train_images  # 1437 digits
    _, logits = classifier_outputs(images[:threshold])
    ten, one = classifier_score(logits, 10), classifier_score(logits, 1)
    assert abs(ten - one) > 1e-3  # the two split counts give different scores on these digits
    assert digits_metrics(images[:threshold], images)["digits_is"] == ten
    _, fewer = classifier_outputs(images[: threshold - 1])
    assert digits_metrics(images[: threshold - 1], images)["digits_is"] == classifier_score(fewer, 1)
