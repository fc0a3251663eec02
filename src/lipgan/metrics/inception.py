"""IS, FID and KID through torch-fidelity's Inception-v3 (the TF-compatible port of the 2015-12-05 graph).

torch-fidelity extracts the features, from a generator wrapped as its `GenerativeModelBase` (no image
touches the disk) and from our datasets wrapped as uint8 image datasets; real features are cached in its
`cache_root` under a name covering dataset, split, resolution, count and the weights file. The numbers
are then computed in float64:
- IS (Salimans et al. 2016, Sec. 4): torch-fidelity's `isc_features_to_metric`, already float64;
- FID (Heusel et al. 2017, Eq. 6): `lipgan.metrics.frechet`, float64 statistics;
- KID (Bińkowski et al. 2018, Eq. 3, cubic polynomial kernel): torch-fidelity's `kid_features_to_metric` on
  float64 features, with the subset size capped at the sample counts.
torch-fidelity itself takes the FID mean and the KID kernels in float32; our values agree with its
`calculate_metrics` to float32 round-off, and IS agrees exactly.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
from torch_fidelity.generative_model_base import GenerativeModelBase
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.utils import (
    create_feature_extractor,
    extract_featuresdict_from_input_id_cached,
    get_featuresdict_from_generative_model,
)

from lipgan.data.transforms import to_uint8
from lipgan.errors import MissingFileError
from lipgan.metrics.frechet import as_float64, frechet_distance_of_features

SampleFn = Callable[[int], torch.Tensor]

INCEPTION_WEIGHTS_ENV = "LIPGAN_INCEPTION_WEIGHTS"
INCEPTION_WEIGHTS_URL = URL_INCEPTION_V3
INCEPTION_EXTRACTOR = "inception-v3-compat"
FID_LAYER = "2048"  # pool3 features, [N, 2048]
IS_LAYER = "logits_unbiased"  # logits without the FC bias, [N, 1008], as the TF graph's IS
DOWNLOAD_TIMEOUT_S = 20.0
KID_SUBSET_SIZE = 1000
KID_SUBSETS = 100
REAL_SUBSET_SEED = 0
RANDOM_LOGIT_WEIGHT_STD = 1.0


def images_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images `[N, C, H, W]` in [−1, 1] (C = 1 or 3) to uint8 `[N, 3, H, W]`: `round((x + 1) · 127.5)`,
    one channel repeated to three: the data's own conversion (`lipgan.data.to_uint8`), computed in float32.
    Inverts `x = u / 127.5 − 1` of uint8 data exactly."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got shape {tuple(images.shape)}")
    levels = to_uint8(images.float())
    return levels.expand(-1, 3, -1, -1).contiguous()  # [N, 3, H, W]


class UInt8ImageDataset(Dataset):
    """The images of a dataset of `(x [C, H, W] in [−1, 1], y)` pairs as uint8 `[3, H, W]`, the input
    torch-fidelity expects; `indices` picks a subset (default: all)."""

    def __init__(self, dataset: Dataset, indices: torch.Tensor | None = None):
        self.dataset = dataset
        self.indices = torch.arange(len(dataset)) if indices is None else indices  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.dataset[int(self.indices[index])][0]  # [C, H, W]
        return images_to_uint8(image.unsqueeze(0))[0]  # [3, H, W]


class SampleFnGenerator(GenerativeModelBase):
    """A sampler `sample_fn(n) -> [n, C, H, W]` in [−1, 1] as a torch-fidelity generative model.

    torch-fidelity feeds it noise `[n, 1]`; only the batch size is used, the sampler draws its own latents.
    """

    def __init__(self, sample_fn: SampleFn):
        super().__init__()
        self.sample_fn = sample_fn

    @property
    def z_size(self) -> int:
        return 1

    @property
    def z_type(self) -> str:
        return "normal"

    @property
    def num_classes(self) -> int:
        return 0

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return images_to_uint8(self.sample_fn(noise.shape[0])).to(noise.device)  # [n, 3, H, W]


def generator_sample_fn(generator, seed: int = 0, device=None) -> SampleFn:
    """`sample_fn(n) = G(G.sample_z(n))` without gradients, latents from a generator seeded with `seed`.
    Put G in eval mode first: batch-norm statistics of a training-mode G depend on the batch size."""
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def sample(n: int) -> torch.Tensor:
        return generator(generator.sample_z(n, generator=rng, device=device))

    return sample


def _hub_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(INCEPTION_WEIGHTS_URL).name


def _download_weights(destination: Path) -> None:
    """torch-fidelity's download (torch hub's cache), with a socket timeout so that a machine without
    network fails in seconds; failure is a `MissingFileError` saying how to provide the file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(INCEPTION_WEIGHTS_URL, str(destination), progress=False)
    except OSError as error:
        raise MissingFileError(
            f"cannot download the Inception weights ({error}); fetch {INCEPTION_WEIGHTS_URL} and set "
            f"{INCEPTION_WEIGHTS_ENV}=/path/to/{destination.name} or eval.inception_weights"
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)


def resolve_inception_weights(weights_path: str | os.PathLike | None = None) -> Path:
    """The Inception weights file: `weights_path`, else `$LIPGAN_INCEPTION_WEIGHTS`, else torch-fidelity's
    file in the torch hub cache, downloaded when missing."""
    chosen = weights_path or os.environ.get(INCEPTION_WEIGHTS_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise MissingFileError(
                f"Inception weights {path} not found; download {INCEPTION_WEIGHTS_URL} and point "
                f"{INCEPTION_WEIGHTS_ENV} or eval.inception_weights at it"
            )
        return path
    path = _hub_weights_path()
    if not path.is_file():
        _download_weights(path)
    return path


@functools.lru_cache(maxsize=4)
def weights_tag(weights_path: Path) -> str:
    """A short content hash of a weights file, so that real-feature caches of different weights differ."""
    digest = hashlib.sha256()
    with open(weights_path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


class _DefaultInitInception(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception-v3 that ignores the weights it is given (keeps its initialisation)."""

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return None


def write_random_inception_weights(path: str | os.PathLike, seed: int = 0) -> Path:
    """Writes a randomly initialised Inception-v3 state dict in torch-fidelity's format, for tests and
    offline smoke runs (its IS/FID/KID are well-defined but mean nothing). Convolutions get He-normal
    weights so that activations keep their scale through the 20-odd layers, and the logit layer large
    weights so that the class posteriors differ between images (IS > 1)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({}, path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _DefaultInitInception("inception-v3-compat", [FID_LAYER], feature_extractor_weights_path=path)
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        torch.nn.init.normal_(model.fc.weight, std=RANDOM_LOGIT_WEIGHT_STD)
    torch.save(model.state_dict(), path)
    return path


@functools.lru_cache(maxsize=2)
def inception_extractor(weights_path: Path, cuda: bool) -> FeatureExtractorInceptionV3:
    """torch-fidelity's Inception-v3 returning pool3 features and unbiased logits, kept for the process."""
    return create_feature_extractor(
        INCEPTION_EXTRACTOR,
        [FID_LAYER, IS_LAYER],
        cuda=cuda,
        feature_extractor_weights_path=str(weights_path),
        verbose=False,
    )


def fake_features(
    sample_fn: SampleFn,
    n_fake: int,
    extractor,
    batch_size: int = 64,
    cuda: bool = False,
    verbose: bool = False,
) -> dict[str, torch.Tensor]:
    """Pool3 features `[n, 2048]` and unbiased logits `[n, 1008]` of `n_fake` generated images."""
    return get_featuresdict_from_generative_model(
        SampleFnGenerator(sample_fn), extractor, n_fake, batch_size, cuda, 0, verbose
    )


def real_subset_indices(n_available: int, n_real: int | None) -> torch.Tensor:
    """The first `n_real` of a fixed permutation (seed `REAL_SUBSET_SEED`), or all items in order."""
    if n_real is None or n_real >= n_available:
        return torch.arange(n_available)
    rng = torch.Generator().manual_seed(REAL_SUBSET_SEED)
    return torch.randperm(n_available, generator=rng)[:n_real]


def real_cache_name(dataset_name: str, split: str, resolution: int, n_real: int, tag: str) -> str:
    """The torch-fidelity cache name of real features: dataset, split, resolution, count and weights."""
    return f"lipgan-{dataset_name}-{split}-{resolution}px-n{n_real}-s{REAL_SUBSET_SEED}-w{tag}"


def real_features(
    dataset: Dataset,
    n_real: int | None,
    extractor,
    cache_name: str | None = None,
    cache_root: str | os.PathLike | None = None,
    batch_size: int = 64,
    cuda: bool = False,
    save_cpu_ram: bool = True,
    verbose: bool = False,
) -> torch.Tensor:
    """Pool3 features `[n, 2048]` of `n_real` images of `dataset` (all when None or larger), read from or
    written to torch-fidelity's cache when `cache_name` is given. `save_cpu_ram` loads in-process."""
    images = UInt8ImageDataset(dataset, real_subset_indices(len(dataset), n_real))
    pool3_only = _with_features(extractor, [FID_LAYER])
    features = extract_featuresdict_from_input_id_cached(
        2,
        pool3_only,
        input2=images,
        input2_cache_name=cache_name,
        cache=cache_name is not None,
        cache_root=None if cache_root is None else str(cache_root),
        batch_size=batch_size,
        cuda=cuda,
        save_cpu_ram=save_cpu_ram,
        verbose=verbose,
    )
    return features[FID_LAYER]


def _with_features(extractor, features: list[str]):
    """A shallow copy of a torch-fidelity extractor (same weights) that returns only `features`."""
    view = torch.nn.Module.__new__(type(extractor))
    view.__dict__ = dict(extractor.__dict__, features_list=list(features))
    return view


def inception_score(logits: torch.Tensor, n_splits: int = 10, seed: int = 0) -> dict[str, float]:
    """IS = exp(E_x KL(p(y|x) ‖ p(y))) per split, mean and std over `n_splits` (Salimans et al. 2016)."""
    scores = isc_features_to_metric(logits, n_splits, True, seed)
    return {"is": scores["inception_score_mean"], "is_std": scores["inception_score_std"]}


def kid_subset_size(n_fake: int, n_real: int, subset_size: int = KID_SUBSET_SIZE) -> int:
    """KID's subset size capped at both sample counts (torch-fidelity raises when it exceeds one)."""
    return min(subset_size, n_fake, n_real)


def kernel_inception_distance(
    features_fake: torch.Tensor,
    features_real: torch.Tensor,
    subset_size: int = KID_SUBSET_SIZE,
    n_subsets: int = KID_SUBSETS,
    seed: int = 0,
) -> dict[str, float]:
    """Unbiased MMD² with the kernel `(xᵀy / D + 1)³`, mean and std over random subsets (Bińkowski et al.
    2018, Eq. 3), on float64 features."""
    size = kid_subset_size(len(features_fake), len(features_real), subset_size)
    scores = kid_features_to_metric(
        as_float64(features_fake),
        as_float64(features_real),
        kid_subsets=n_subsets,
        kid_subset_size=size,
        rng_seed=seed,
        verbose=False,
    )
    return {
        "kid": scores["kernel_inception_distance_mean"],
        "kid_std": scores["kernel_inception_distance_std"],
    }


def frechet_inception_distance(features_fake: torch.Tensor, features_real: torch.Tensor) -> float:
    """FID between pool3 features (Heusel et al. 2017, Eq. 6), float64 statistics."""
    return frechet_distance_of_features(features_fake, features_real)
