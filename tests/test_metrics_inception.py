"""IS/FID/KID through torch-fidelity, with randomly initialised Inception-v3 weights (no network).

Inception-v3 on 299² inputs costs about 0.3 s per image on this 2-core machine, so the tests run the
extractor at its smallest valid input, 75² (torch-fidelity resizes every image to the class attribute
`INPUT_IMAGE_SIZE`); one test checks 299² on two images. The properties tested do not depend on the size.
"""

import os
import socket
import urllib.error

import pytest
import torch
import torch_fidelity
from filelock import FileLock
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.metric_kid import kid_features_to_metric

from lipgan.errors import ConfigError, MissingFileError
from lipgan.metrics import EVALUATORS, SampleFnGenerator, UInt8ImageDataset, images_to_uint8
from lipgan.metrics import inception as inception_module
from lipgan.metrics.digits import load_digits_split
from lipgan.metrics.inception import (
    FID_LAYER,
    INCEPTION_WEIGHTS_ENV,
    INCEPTION_WEIGHTS_URL,
    IS_LAYER,
    fake_features,
    frechet_inception_distance,
    generator_sample_fn,
    inception_extractor,
    inception_score,
    kernel_inception_distance,
    kid_subset_size,
    real_cache_name,
    real_features,
    resolve_inception_weights,
    weights_tag,
    write_random_inception_weights,
)
from lipgan.metrics.protocols import PROTOCOLS, inception_metrics

N_FAKE, N_REAL, KID_SUBSETS = 24, 32, 10


class ImageSet(Dataset):
    """A minimal dataset of `(image [1, H, W], label)` pairs, as lipgan's datasets return them."""

    name, resolution, kind = "digits-test", 32, "image"

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], -1


def bank_sampler(images: torch.Tensor):
    """`sample_fn(n)` returning the next `n` images of a fixed bank, in order."""
    position = [0]

    def sample(n: int) -> torch.Tensor:
        batch = images[position[0] : position[0] + n]
        position[0] += n
        return batch

    return sample


@pytest.fixture(scope="module", autouse=True)
def small_inception_input():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FeatureExtractorInceptionV3, "INPUT_IMAGE_SIZE", 75)
        yield


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory):
    """A folder shared by the xdist workers of this session, so that the Inception passes run once."""
    root = tmp_path_factory.getbasetemp()
    path = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "metrics-inception"
    path.mkdir(exist_ok=True)
    return path


def computed_once(shared_dir, name, compute):
    """`compute()`, run by the first worker to get here and read back by the others."""
    path = shared_dir / f"{name}.pt"
    with FileLock(f"{path}.lock"):
        if not path.exists():
            torch.save(compute(), path)
    return torch.load(path, weights_only=False)


@pytest.fixture(scope="module")
def weights(shared_dir):
    path = shared_dir / "random-inception.pth"
    with FileLock(f"{path}.lock"):
        if not path.exists():
            write_random_inception_weights(path, seed=0)
    return path


@pytest.fixture(scope="module")
def images():
    split = load_digits_split(32)
    fake = 0.8 * split.test_images[:N_FAKE] + 0.1  # [N_FAKE, 1, 32, 32]
    return fake, ImageSet(split.train_images[:N_REAL])


@pytest.fixture(scope="module")
def cache_root(shared_dir):
    return shared_dir / "fidelity-cache"


@pytest.fixture(scope="module")
def ours(weights, images, cache_root, shared_dir):
    fake, real = images
    evaluate = EVALUATORS.get("image")
    return computed_once(
        shared_dir,
        "ours",
        lambda: evaluate(
            bank_sampler(fake),
            real,
            N_FAKE,
            protocol="quick",
            n_real=N_REAL,
            weights_path=weights,
            cache_root=cache_root,
            batch_size=16,
            kid_subsets=KID_SUBSETS,
            device="cpu",
        ),
    )


@pytest.fixture(scope="module")
def reference(weights, images, shared_dir):
    fake, real = images
    return computed_once(
        shared_dir,
        "reference",
        lambda: torch_fidelity.calculate_metrics(
            input1=SampleFnGenerator(bank_sampler(fake)),
            input1_model_num_samples=N_FAKE,
            input2=UInt8ImageDataset(real),
            isc=True,
            fid=True,
            kid=True,
            kid_subset_size=N_FAKE,
            kid_subsets=KID_SUBSETS,
            feature_extractor_weights_path=str(weights),
            batch_size=16,
            rng_seed=0,
            cuda=False,
            cache=False,
            save_cpu_ram=True,
            verbose=False,
        ),
    )


@pytest.fixture(scope="module")
def features(weights, images, cache_root, ours, shared_dir):
    """Features from our extraction functions; the real ones come from the cache `ours` wrote."""
    fake, real = images
    extractor = inception_extractor(weights, False)
    return computed_once(
        shared_dir,
        "features",
        lambda: {
            "fake": fake_features(bank_sampler(fake), N_FAKE, extractor, batch_size=16),
            "fake_batch_5": fake_features(bank_sampler(fake), N_FAKE, extractor, batch_size=5),
            "real": real_features(
                real,
                N_REAL,
                extractor,
                real_cache_name("digits-test", "train", 32, N_REAL, weights_tag(weights)),
                cache_root,
            ),
        },
    )


def test_inception_score_equals_torch_fidelity_exactly(ours, reference):
    assert ours["is_mean"] == reference["inception_score_mean"]
    assert ours["is_std"] == reference["inception_score_std"]
    assert 1.0 < ours["is_mean"] < 10.0


def test_fid_and_kid_equal_torch_fidelity_to_float32_round_off(ours, reference):
    # torch-fidelity takes the feature mean and the cubic kernels in float32, we in float64: the values
    # differ by float32 round-off of O(1) quantities (kernel entries (xᵀy/2048 + 1)³ ≈ 1), about 1e-7.
    torch.testing.assert_close(ours["fid"], reference["frechet_inception_distance"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        ours["kid_mean"], reference["kernel_inception_distance_mean"], rtol=0.0, atol=1e-6
    )
    assert (ours["n_fake"], ours["n_real"], ours["n_draws"]) == (N_FAKE, N_REAL, 1)


def test_pipeline_numbers_are_those_of_its_features(ours, features):
    pool3_fake, pool3_real = features["fake"][FID_LAYER], features["real"]
    assert ours["fid"] == frechet_inception_distance(pool3_fake, pool3_real)
    assert ours["is_mean"] == inception_score(features["fake"][IS_LAYER])["is"]
    assert ours["kid_mean"] == kernel_inception_distance(pool3_fake, pool3_real, n_subsets=KID_SUBSETS)["kid"]


def test_real_features_are_cached_under_a_descriptive_key(cache_root, weights):
    name = real_cache_name("digits-test", "train", 32, N_REAL, weights_tag(weights))
    assert name.startswith("lipgan-digits-test-train-32px-n32-")
    assert (cache_root / f"{name}-inception-v3-compat-features-{FID_LAYER}.pt").is_file()


def test_fid_against_itself_is_zero_and_fid_is_symmetric(features, weights, images, cache_root):
    pool3_fake, pool3_real = features["fake"][FID_LAYER], features["real"]
    forward, backward = (
        frechet_inception_distance(pool3_fake, pool3_real),
        frechet_inception_distance(pool3_real, pool3_fake),
    )
    torch.testing.assert_close(forward, backward, rtol=1e-12, atol=0.0)
    assert forward > 1e-3
    _, real = images
    itself = inception_metrics(
        bank_sampler(real.images),
        real,
        n_fake=N_REAL,
        n_real=N_REAL,
        weights_path=weights,
        cache_root=cache_root,
        batch_size=16,
        kid_subsets=KID_SUBSETS,
        device="cpu",
    )
    assert abs(itself["fid"]) <= 1e-6


def test_results_do_not_depend_on_batch_size(features):
    # Convolutions and the logit matmul block differently per batch size, so features move by float32
    # round-off of 2048-term sums: about √2048 · 6e-8 ≈ 3e-6 of the largest feature magnitude, not of each
    # element (elements near zero have no relative precision to keep).
    small, large = features["fake_batch_5"], features["fake"]
    for layer in (FID_LAYER, IS_LAYER):
        scale = large[layer].abs().max().item()
        torch.testing.assert_close(small[layer], large[layer], rtol=0.0, atol=3e-6 * scale)
    torch.testing.assert_close(
        inception_score(small[IS_LAYER])["is"], inception_score(large[IS_LAYER])["is"], rtol=1e-6, atol=0.0
    )
    torch.testing.assert_close(
        frechet_inception_distance(small[FID_LAYER], features["real"]),
        frechet_inception_distance(large[FID_LAYER], features["real"]),
        rtol=1e-6,
        atol=0.0,
    )


def test_kid_caps_the_subset_size_below_the_sample_count(features):
    pool3_fake, pool3_real = features["fake"][FID_LAYER], features["real"]
    with pytest.raises(ValueError, match="KID subset size"):
        kid_features_to_metric(pool3_fake, pool3_real, kid_subset_size=1000, verbose=False)
    ours = kernel_inception_distance(pool3_fake, pool3_real, subset_size=1000, n_subsets=KID_SUBSETS)
    capped = kid_features_to_metric(
        pool3_fake.double(),
        pool3_real.double(),
        kid_subset_size=N_FAKE,
        kid_subsets=KID_SUBSETS,
        rng_seed=0,
        verbose=False,
    )
    assert ours["kid"] == capped["kernel_inception_distance_mean"]


@pytest.mark.parametrize(("n_fake", "n_real"), [(40, 24), (24, 40), (24, 24)])
def test_kid_caps_the_subset_size_at_the_smaller_of_both_counts(n_fake, n_real):
    """More fakes than reals as well as fewer (docs/methods.md §9.3), on synthetic features."""
    gen = torch.Generator().manual_seed(0)
    fake = torch.randn(n_fake, 16, generator=gen, dtype=torch.float64) + 0.3
    real = torch.randn(n_real, 16, generator=gen, dtype=torch.float64)
    assert kid_subset_size(n_fake, n_real) == 24
    assert kid_subset_size(n_fake, n_real, subset_size=10) == 10
    ours = kernel_inception_distance(fake, real, subset_size=1000, n_subsets=KID_SUBSETS)
    reference = kid_features_to_metric(
        fake, real, kid_subset_size=24, kid_subsets=KID_SUBSETS, rng_seed=0, verbose=False
    )
    assert ours["kid"] == reference["kernel_inception_distance_mean"]
    assert ours["kid_std"] == reference["kernel_inception_distance_std"]
    assert ours["kid"] > 0.01  # the shifted fakes are told apart from the reals


def test_full_size_input_goes_through_the_same_features(weights, images, monkeypatch):
    monkeypatch.setattr(FeatureExtractorInceptionV3, "INPUT_IMAGE_SIZE", 299)
    fake, _ = images
    extractor = inception_extractor(weights, False)
    ours = fake_features(bank_sampler(fake[:2]), 2, extractor, batch_size=2)
    pool3, logits = extractor(images_to_uint8(fake[:2]))
    assert torch.equal(ours[FID_LAYER], pool3) and torch.equal(ours[IS_LAYER], logits)


def test_uint8_conversion_inverts_the_dataset_scaling():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)  # every level once
    scaled = levels.float() / 127.5 - 1.0  # [-1, 1]
    converted = images_to_uint8(scaled)
    assert converted.shape == (1, 3, 16, 16) and converted.dtype == torch.uint8
    assert torch.equal(converted, levels.expand(1, 3, 16, 16))
    colour = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.equal(images_to_uint8(colour)[:, 1], ((colour[:, 1] + 1) * 127.5).round().to(torch.uint8))


def test_generator_sample_fn_is_seeded_and_batch_consistent():
    class TinyGenerator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 16)

        def sample_z(self, n, generator=None, device=None):
            return torch.randn(n, 4, generator=generator, device=device)

        def forward(self, z):
            return torch.tanh(self.fc(z)).view(-1, 1, 4, 4)

    generator = TinyGenerator()
    first, second = generator_sample_fn(generator, seed=3), generator_sample_fn(generator, seed=3)
    images = first(6)
    assert images.shape == (6, 1, 4, 4) and not images.requires_grad
    assert torch.equal(images, second(6))
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(images, generator(z).detach(), rtol=0.0, atol=0.0)


def test_protocols_registry():
    assert PROTOCOLS.names() == ["bssn", "gn", "gran", "quick"]
    gran = PROTOCOLS.get("gran")
    assert gran.n_draws == 3 and gran.measurements[0].n_fake == gran.measurements[0].n_real == 50_000
    assert PROTOCOLS.get("gn").splits() == ["test", "train"]
    bssn_fid = PROTOCOLS.get("bssn").measurements[1]
    assert (bssn_fid.n_fake, bssn_fid.n_real) == (10_000, 5_000)


def test_bad_protocol_inputs_are_config_errors(images):
    fake, real = images
    with pytest.raises(ConfigError, match="pass a mapping"):
        inception_metrics(bank_sampler(fake), real, protocol="gn")
    with pytest.raises(ConfigError, match=r"split\(s\) \['test'\] missing"):
        inception_metrics(bank_sampler(fake), {"train": real}, protocol="gn")
    with pytest.raises(ConfigError, match="valid: batch_size"):
        inception_metrics(bank_sampler(fake), real, kid_subset=10)
    with pytest.raises(ConfigError, match="bssn, gn, gran, quick"):
        inception_metrics(bank_sampler(fake), real, protocol="fast")


def test_missing_weights_fail_fast_with_one_line(monkeypatch, tmp_path):
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    seen_timeouts = []

    def offline_download(url, destination, progress=True):
        seen_timeouts.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline_download)
    with pytest.raises(MissingFileError) as raised:
        resolve_inception_weights()
    message = str(raised.value)
    assert "\n" not in message and INCEPTION_WEIGHTS_URL in message and INCEPTION_WEIGHTS_ENV in message
    assert seen_timeouts == [inception_module.DOWNLOAD_TIMEOUT_S]
    assert socket.getdefaulttimeout() is None


def test_weights_path_argument_then_environment(monkeypatch, weights, tmp_path):
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(weights))
    assert resolve_inception_weights() == weights
    with pytest.raises(MissingFileError, match="not found"):
        resolve_inception_weights(tmp_path / "absent.pth")


def test_precision_recall_on_features_with_known_answers():
    from lipgan.metrics.protocols import precision_recall

    gen = torch.Generator().manual_seed(0)
    real = torch.randn(200, 16, generator=gen)
    assert precision_recall(real.clone(), real) == {"precision": 1.0, "recall": 1.0}
    far = real + 1000.0  # every fake outside every real ball and the other way round
    assert precision_recall(far, real) == {"precision": 0.0, "recall": 0.0}
    # fakes = the reals in one half-space: all of them are real-like (precision 1), and reals of the other
    # half lie outside the fakes' small balls (recall strictly between 0 and 1)
    half = real[real[:, 0] > 0.5]
    result = precision_recall(half, real)
    assert result["precision"] == 1.0 and 0.0 < result["recall"] < 1.0


def test_the_quick_protocol_reports_precision_and_recall():
    from lipgan.metrics import PROTOCOLS

    (measurement,) = PROTOCOLS.get("quick").measurements
    assert measurement.metrics == ("is", "fid", "kid", "prc")
    assert all(
        "prc" not in m.metrics for name in ("gran", "gn", "bssn") for m in PROTOCOLS.get(name).measurements
    )
