"""Metrics of class-conditional generators (docs/methods.md §9.8): balanced labels, `digits_cond_acc`,
`digits_intra_fid` and their references, and the image `intra_fid` through torch-fidelity's features.

The "generators" are real digits (or images) picked by the requested label, so the expected numbers are
those of the classifier (or of the features) on the same digits, computed here by hand. The Inception tests
use randomly initialised weights at the extractor's smallest input, 75², as tests/test_metrics_inception.py.
"""

from __future__ import annotations

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from fake_datasets import write_fake_cifar10
from lipgan.data import get_dataset
from lipgan.data.base import TensorDataset
from lipgan.errors import ConfigError
from lipgan.metrics import EVALUATORS
from lipgan.metrics.conditional import (
    balanced_labels,
    dataset_labels,
    intra_frechet_distance,
    labelled_sampler,
    per_class_frechet_distances,
)
from lipgan.metrics.digits import classifier_outputs, digits_accuracy, digits_metrics, load_digits_split
from lipgan.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_of_features
from lipgan.metrics.inception import (
    FID_LAYER,
    fake_features,
    inception_extractor,
    real_features,
    write_random_inception_weights,
)

N_CLASSES = 10
PER_CLASS = 35  # the test split holds 35 to 37 digits of each class
N_DIGITS = N_CLASSES * PER_CLASS


class DigitsStandIn:
    """What the digits evaluator reads from the digits dataset."""

    name, kind, channels = "digits", "image", 1

    def __init__(self, resolution: int):
        self.resolution = resolution


def digits_of_class(images: torch.Tensor, labels: torch.Tensor, shift: int = 0):
    """A conditional "generator" returning, for each requested label `y`, the next real digit of class
    `(y + shift) mod 10`, in order; it records the labels it was asked for."""
    by_class = [images[labels == k] for k in range(N_CLASSES)]
    taken = [0] * N_CLASSES
    asked: list[torch.Tensor] = []

    def sample(n: int, requested: torch.Tensor) -> torch.Tensor:
        assert requested.dtype == torch.int64 and requested.shape == (n,)
        asked.append(requested.clone())
        picked = []
        for y in requested.tolist():
            k = (y + shift) % N_CLASSES
            picked.append(by_class[k][taken[k] % len(by_class[k])])
            taken[k] += 1
        return torch.stack(picked)  # [n, 1, r, r]

    sample.asked = asked
    return sample


def test_balanced_labels_are_cyclic_and_round_down():
    labels = balanced_labels(25, N_CLASSES)
    assert labels.dtype == torch.int64
    assert torch.equal(labels, torch.arange(N_CLASSES).repeat(2))
    assert torch.equal(torch.bincount(balanced_labels(2000, N_CLASSES)), torch.full((N_CLASSES,), 200))
    for start in range(0, 20, N_CLASSES):  # every run of K consecutive labels holds each class once
        assert sorted(labels[start : start + N_CLASSES].tolist()) == list(range(N_CLASSES))
    assert torch.equal(balanced_labels(10, 10), torch.arange(10))


def test_fewer_samples_than_classes_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="n_samples=9 is smaller than num_classes=10") as raised:
        balanced_labels(9, N_CLASSES)
    assert "\n" not in str(raised.value)
    split = load_digits_split(16)
    with pytest.raises(ConfigError, match="n_samples=5 is smaller than num_classes=10"):
        EVALUATORS.get("digits").conditional(
            digits_of_class(split.test_images, split.test_labels), DigitsStandIn(16), 5, N_CLASSES
        )
    with pytest.raises(ConfigError, match="n_samples=3 is smaller than num_classes=10"):
        EVALUATORS.get("image").conditional(None, None, 3, N_CLASSES, protocol="quick")
    with pytest.raises(ConfigError, match="class 0 has 1 generated"):  # one per class: no covariance
        EVALUATORS.get("digits").conditional(
            digits_of_class(split.test_images, split.test_labels), DigitsStandIn(16), 19, N_CLASSES
        )


def test_labelled_sampler_hands_out_the_labels_in_order():
    labels = balanced_labels(30, N_CLASSES)
    seen = []
    sample = labelled_sampler(lambda n, y: seen.append(y) or y.double().view(n, 1), labels)
    assert torch.equal(torch.cat([sample(7), sample(16), sample(7)]).view(-1), labels.double())
    assert torch.equal(torch.cat(seen), labels)
    with pytest.raises(RuntimeError, match="samples 30..31 of 30"):
        sample(1)


def test_only_digits_and_images_have_a_conditional_evaluator():
    assert EVALUATORS.get("points").conditional is None
    assert EVALUATORS.get("digits").conditional is not None
    assert EVALUATORS.get("image").conditional is not None


@pytest.fixture(scope="module")
def class_correct():
    """The digits evaluator on held-out digits of the requested classes, and the generator it asked."""
    split = load_digits_split(16)
    sample = digits_of_class(split.test_images, split.test_labels)
    result = EVALUATORS.get("digits").conditional(sample, DigitsStandIn(16), N_DIGITS + 7, N_CLASSES)
    return result, sample


def test_digits_evaluator_asks_for_balanced_labels_once(class_correct):
    result, sample = class_correct
    (asked,) = sample.asked
    assert torch.equal(asked, balanced_labels(N_DIGITS, N_CLASSES))
    assert torch.equal(torch.bincount(asked), torch.full((N_CLASSES,), PER_CLASS))
    assert set(result) == {
        "digits_is",
        "digits_fid",
        "digits_cond_acc",
        "digits_intra_fid",
        "digits_is_real",
        "digits_fid_real",
        "digits_cond_acc_real",
        "digits_intra_fid_real",
    }


def test_digits_cond_acc_of_class_correct_digits_is_the_classifier_accuracy(class_correct):
    result, sample = class_correct
    split = load_digits_split(16)
    (asked,) = sample.asked
    fake = digits_of_class(split.test_images, split.test_labels)(len(asked), asked)
    assert result["digits_cond_acc"] == digits_accuracy(fake, asked)
    # measured: 349 of the 350 digits; one flip allowed for platform round-off of a near tie
    assert abs(result["digits_cond_acc"] - 349 / 350) <= 1 / 350 + 1e-12
    assert result["digits_cond_acc_real"] == digits_accuracy(split.test_images, split.test_labels)
    assert 0.97 <= result["digits_cond_acc_real"] <= 1.0
    unconditional = digits_metrics(fake, split.train_images)  # the same digits, in the same order
    assert result["digits_is"] == unconditional["digits_is"]
    assert result["digits_fid"] == unconditional["digits_fid"]


def test_digits_cond_acc_of_wrong_class_digits_is_what_the_classifier_says():
    split = load_digits_split(16)
    sample = digits_of_class(split.test_images, split.test_labels, shift=1)
    result = EVALUATORS.get("digits").conditional(sample, DigitsStandIn(16), N_DIGITS, N_CLASSES)
    (asked,) = sample.asked
    fake = digits_of_class(split.test_images, split.test_labels, shift=1)(len(asked), asked)
    _, logits = classifier_outputs(fake)
    assert result["digits_cond_acc"] == float((logits.argmax(dim=1) == asked).double().mean())
    assert result["digits_cond_acc"] == 0.0  # measured: the classifier never mistakes k + 1 for k here
    assert digits_accuracy(fake, (asked + 1) % N_CLASSES) >= 0.97  # yet they are good digits


def test_digits_intra_fid_is_the_mean_of_per_class_frechet_distances(class_correct):
    result, sample = class_correct
    split = load_digits_split(16)
    (asked,) = sample.asked
    fake = digits_of_class(split.test_images, split.test_labels)(len(asked), asked)
    fake_features, _ = classifier_outputs(fake)
    train_features, _ = classifier_outputs(split.train_images)
    test_features, _ = classifier_outputs(split.test_images)
    for value, features, labels in [
        (result["digits_intra_fid"], fake_features, asked),
        (result["digits_intra_fid_real"], test_features, split.test_labels),
    ]:
        by_hand = [
            frechet_distance_of_features(features[labels == k], train_features[split.train_labels == k])
            for k in range(N_CLASSES)
        ]
        torch.testing.assert_close(value, sum(by_hand) / N_CLASSES, rtol=1e-9, atol=0.0)
        # from statistics: ~36 digits per class in 64-d give rank-deficient covariances, whose √ε
        # round-off per null direction (docs/methods.md §9.1) moves the distance by ~5e-9 relative
        from_statistics = [
            frechet_distance(
                *feature_statistics(features[labels == k]),
                *feature_statistics(train_features[split.train_labels == k]),
            )
            for k in range(N_CLASSES)
        ]
        torch.testing.assert_close(value, sum(from_statistics) / N_CLASSES, rtol=1e-7, atol=0.0)


def test_digits_intra_fid_tells_class_correct_digits_from_shuffled_ones(class_correct):
    result, _ = class_correct
    split = load_digits_split(16)
    shuffled = digits_of_class(split.test_images, split.test_labels, shift=3)
    wrong = EVALUATORS.get("digits").conditional(shuffled, DigitsStandIn(16), N_DIGITS, N_CLASSES)
    # measured at 16²: 26.6 for the right classes (test 25.5 at 36 per class) against ~1.6e3 shuffled
    assert 20.0 <= result["digits_intra_fid"] <= 35.0
    assert 20.0 <= result["digits_intra_fid_real"] <= 35.0
    assert wrong["digits_intra_fid"] > 20 * result["digits_intra_fid"]
    # the unconditional FID sees the same digits either way: it cannot tell
    torch.testing.assert_close(wrong["digits_fid"], result["digits_fid"], rtol=1e-9, atol=0.0)


def test_digits_conditional_reference_is_cached_per_resolution():
    from lipgan.metrics.evaluators import digits_conditional_reference_at

    assert digits_conditional_reference_at(16) is digits_conditional_reference_at(16)
    split = load_digits_split(32)
    assert digits_conditional_reference_at(32)["digits_cond_acc_real"] == digits_accuracy(
        split.test_images, split.test_labels
    )


def test_digits_refuse_another_number_of_classes():
    split = load_digits_split(16)
    with pytest.raises(ConfigError, match="the digits have 10 classes; the generator has num_classes=5"):
        EVALUATORS.get("digits").conditional(
            digits_of_class(split.test_images, split.test_labels), DigitsStandIn(16), 100, 5
        )


def test_per_class_frechet_distances_need_two_samples_per_class():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2] * 4)
    distances = per_class_frechet_distances(features, labels, features + 1.0, labels, 3)
    torch.testing.assert_close(distances, [3.0, 3.0, 3.0], rtol=1e-12, atol=0.0)  # ‖shift‖² = 3 each
    assert intra_frechet_distance(features, labels, features + 1.0, labels, 3) == sum(distances) / 3
    with pytest.raises(ConfigError, match="class 3 has 0 generated and 0 real"):
        per_class_frechet_distances(features, labels, features, labels, 4)


# --- images: intra-class FID through torch-fidelity's features ----------------------------------------

N_FAKE_IMAGES = 40  # 4 per class
BATCH = 16


@pytest.fixture(scope="module", autouse=False)
def small_inception_input():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FeatureExtractorInceptionV3, "INPUT_IMAGE_SIZE", 75)
        yield


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """Fake CIFAR-10 in its on-disk format: 50 train images (3 to 10 of each class) and 10 test ones."""
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar10(root, per_file=10, seed=0)
    return get_dataset("cifar10", root=root, split="train")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_random_inception_weights(tmp_path_factory.mktemp("inception") / "random.pth", seed=0)


def images_of_class(dataset):
    """A conditional "generator": for label `y`, the next train image of class `y`, dimmed and shifted."""
    labels = dataset_labels(dataset)
    by_class = [torch.nonzero(labels == k).view(-1) for k in range(N_CLASSES)]
    taken = [0] * N_CLASSES

    def sample(n: int, requested: torch.Tensor) -> torch.Tensor:
        picked = []
        for y in requested.tolist():
            index = by_class[y][taken[y] % len(by_class[y])]
            picked.append(0.8 * dataset[int(index)][0] + 0.1)
            taken[y] += 1
        return torch.stack(picked)  # [n, 3, 32, 32]

    return sample


@pytest.fixture(scope="module")
def image_options(weights, tmp_path_factory):
    """The image evaluator's options; real features are cached in a fresh folder, never the user's."""
    cache_root = tmp_path_factory.mktemp("fidelity-cache")
    return {
        "protocol": "quick",
        "weights_path": weights,
        "cache_root": cache_root,
        "batch_size": BATCH,
        "device": "cpu",
    }


@pytest.fixture(scope="module")
def image_results(small_inception_input, cifar, image_options):
    conditional = EVALUATORS.get("image").conditional
    first = conditional(images_of_class(cifar), cifar, N_FAKE_IMAGES + 3, N_CLASSES, **image_options)
    again = conditional(images_of_class(cifar), cifar, N_FAKE_IMAGES, N_CLASSES, **image_options)
    return first, again


def test_image_intra_fid_is_the_mean_of_per_class_frechet_distances(image_results, cifar, weights):
    first, again = image_results
    assert first == again  # deterministic
    assert (first["n_fake"], first["n_real"]) == (N_FAKE_IMAGES, len(cifar))
    extractor = inception_extractor(weights, False)
    fake_labels = balanced_labels(N_FAKE_IMAGES, N_CLASSES)
    fake = fake_features(
        labelled_sampler(images_of_class(cifar), fake_labels), N_FAKE_IMAGES, extractor, BATCH
    )
    real = real_features(cifar, None, extractor, batch_size=BATCH)  # [50, 2048]
    real_labels = torch.as_tensor(cifar.labels)
    by_hand = [
        frechet_distance_of_features(fake[FID_LAYER][fake_labels == k], real[real_labels == k])
        for k in range(N_CLASSES)
    ]
    torch.testing.assert_close(first["intra_fid"], sum(by_hand) / N_CLASSES, rtol=1e-9, atol=0.0)
    torch.testing.assert_close(
        first["fid"], frechet_distance_of_features(fake[FID_LAYER], real), rtol=1e-9, atol=0.0
    )
    assert first["intra_fid"] > first["fid"] > 0  # 4 fakes and 3-10 reals per class: a larger bias


def test_image_conditional_metrics_extend_the_unconditional_ones(image_results, cifar, image_options):
    first, _ = image_results
    sample_fn = labelled_sampler(images_of_class(cifar), balanced_labels(N_FAKE_IMAGES, N_CLASSES))
    unconditional = EVALUATORS.get("image")(sample_fn, cifar, N_FAKE_IMAGES, **image_options)
    assert set(first) == set(unconditional) | {"intra_fid"}
    assert {key: first[key] for key in unconditional} == unconditional


def test_unlabeled_real_data_is_a_config_error_before_any_feature(image_options):
    images = torch.zeros(30, 3, 8, 8)
    unlabeled = TensorDataset(images, torch.full((30,), -1))
    with pytest.raises(ConfigError, match=r"the real split 'train' holds labels outside 0..9 \(min -1"):
        EVALUATORS.get("image").conditional(None, unlabeled, 20, N_CLASSES, **image_options)


def test_dataset_labels_read_the_label_arrays(cifar):
    by_item = torch.tensor([cifar[i][1] for i in range(len(cifar))])
    assert torch.equal(dataset_labels(cifar), by_item)
    indices = torch.tensor([4, 0, 7])
    assert torch.equal(dataset_labels(cifar, indices), by_item[indices])
    tensors = TensorDataset(torch.zeros(5, 2), torch.tensor([3, 1, 4, 1, 5]))
    assert torch.equal(dataset_labels(tensors, torch.tensor([2, 3])), torch.tensor([4, 1]))

    class ItemsOnly(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return torch.zeros(1), 3 - index

    assert torch.equal(dataset_labels(ItemsOnly()), torch.tensor([3, 2, 1, 0]))


def test_protocols_with_several_splits_report_intra_fid_per_split(image_results, cifar, image_options):
    first, _ = image_results
    options = {**image_options, "protocol": "gn", "real": {"train": cifar, "test": cifar}}
    result = EVALUATORS.get("image").conditional(images_of_class(cifar), cifar, N_FAKE_IMAGES, 10, **options)
    assert {key for key in result if "intra" in key} == {"intra_fid_train", "intra_fid_test"}
    # the same fakes against the same 50 reals as the quick protocol's measurement
    assert result["intra_fid_train"] == result["intra_fid_test"] == first["intra_fid"]


def test_digits_is_splits_of_conditional_samples_hold_every_class():
    """The 10 consecutive IS splits of 1000 digits (docs/methods.md §9.5) each hold 10 of every class; with
    the labels sorted by class each split would hold one class and score about 1."""
    split = load_digits_split(16)
    sample = digits_of_class(split.test_images, split.test_labels)
    result = EVALUATORS.get("digits").conditional(sample, DigitsStandIn(16), 1000, N_CLASSES)
    (asked,) = sample.asked
    for chunk in asked.tensor_split(10):
        assert torch.equal(torch.bincount(chunk, minlength=N_CLASSES), torch.full((N_CLASSES,), 10))
    assert 9.0 <= result["digits_is"] <= 10.0  # measured: 9.83
