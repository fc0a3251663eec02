"""The papers' Inception evaluation protocols (docs/methods.md §9.4) as named data, and the function that
runs one.

A protocol is a list of measurements (which metrics, how many generated images, against which real split
and how many real images) and a number of independent draws of generated images whose results are
averaged. One draw generates the largest count any measurement asks for once; every measurement uses the
first `n_fake` of those images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import torch
from torch.utils.data import Dataset

from lipgan.errors import ConfigError
from lipgan.metrics.conditional import (
    CondSampleFn,
    balanced_count,
    balanced_labels,
    check_labels,
    dataset_labels,
    intra_frechet_distance,
    labelled_sampler,
)
from lipgan.metrics.inception import (
    FID_LAYER,
    IS_LAYER,
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    SampleFn,
    fake_features,
    frechet_inception_distance,
    inception_extractor,
    inception_score,
    kernel_inception_distance,
    real_cache_name,
    real_features,
    real_subset_indices,
    resolve_inception_weights,
    weights_tag,
)
from lipgan.registry import Registry

METRIC_NAMES = ("is", "fid", "kid", "prc")
PRC_NEIGHBORHOOD = 3  # k of the k-NN balls (Kynkäänniemi et al. 2019; torch-fidelity's default)


@dataclass(frozen=True)
class Measurement:
    """One comparison: `metrics` ⊆ {"is", "fid", "kid", "prc"} from `n_fake` generated images, FID, KID and
    precision/recall against `n_real` images (None: all) of the real split `split`; result keys get
    `suffix` appended."""

    metrics: tuple[str, ...]
    n_fake: int
    split: str | None = None
    n_real: int | None = None
    suffix: str = ""

    def needs_real(self) -> bool:
        return any(name in ("fid", "kid", "prc") for name in self.metrics)


@dataclass(frozen=True)
class Protocol:
    """A named evaluation protocol: its measurements and the number of generated draws averaged."""

    description: str
    measurements: tuple[Measurement, ...]
    n_draws: int = 1

    def splits(self) -> list[str]:
        return sorted({m.split for m in self.measurements if m.needs_real()})  # type: ignore[misc]


PROTOCOLS: Registry[Protocol] = Registry("evaluation protocol")

PROTOCOLS.register("gran")(
    Protocol(
        "GraN: IS, FID, KID from 50k generated vs 50k real images, mean over 3 draws",
        (Measurement(("is", "fid", "kid"), 50_000, "train", 50_000),),
        n_draws=3,
    )
)
PROTOCOLS.register("gn")(
    Protocol(
        "GN: IS on 50k in 10 splits; FID 50k vs the train split and 10k vs the test split",
        (
            Measurement(("is",), 50_000),
            Measurement(("fid",), 50_000, "train", None, "_train"),
            Measurement(("fid",), 10_000, "test", None, "_test"),
        ),
    )
)
PROTOCOLS.register("bssn")(
    Protocol(
        "BSSN: IS on 50k in 10 splits; FID from 10k generated vs 5k real",
        (Measurement(("is",), 50_000), Measurement(("fid",), 10_000, "train", 5_000)),
    )
)
PROTOCOLS.register("quick")(
    Protocol(
        "quick check during training: IS, FID, KID, precision and recall from 1k generated vs 1k real",
        (Measurement(("is", "fid", "kid", "prc"), 1_000, "train", 1_000),),
    )
)


def override_counts(protocol: Protocol, n_fake: int | None, n_real: int | None) -> Protocol:
    """The protocol with every measurement's generated and/or real count replaced."""
    measurements = tuple(
        replace(
            m,
            n_fake=m.n_fake if n_fake is None else n_fake,
            n_real=m.n_real if n_real is None or not m.needs_real() else n_real,
        )
        for m in protocol.measurements
    )
    return replace(protocol, measurements=measurements)


def real_splits_for(protocol: Protocol, real: Dataset | Mapping[str, Dataset]) -> dict[str, Dataset]:
    """The real dataset of each split the protocol compares against. A lone dataset serves a protocol
    that names a single split; a mapping must hold every split named."""
    needed = protocol.splits()
    if not isinstance(real, Mapping):
        if len(needed) > 1:
            raise ConfigError(f"this protocol compares against splits {needed}; pass a mapping split→dataset")
        return dict.fromkeys(needed, real)
    missing = [split for split in needed if split not in real]
    if missing:
        raise ConfigError(f"real data for split(s) {missing} missing; given: {sorted(real)}")
    return {split: real[split] for split in needed}


@dataclass(frozen=True)
class InceptionSettings:
    """How features are extracted and the metrics' own parameters."""

    weights_path: str | os.PathLike | None = None
    dataset_name: str | None = None
    cache_root: str | os.PathLike | None = None
    cuda: bool = False
    batch_size: int = 64
    is_splits: int = 10
    kid_subset_size: int = KID_SUBSET_SIZE
    kid_subsets: int = KID_SUBSETS
    seed: int = 0
    save_cpu_ram: bool = True
    verbose: bool = False


def inception_settings(**options) -> InceptionSettings:
    """`InceptionSettings` from keywords; unknown ones raise `ConfigError` listing the valid ones."""
    valid = sorted(field.name for field in fields(InceptionSettings))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"unknown Inception option(s) {unknown}; valid: {', '.join(valid)}")
    return InceptionSettings(**options)


def _real_pool3(
    dataset: Dataset, split: str, n_real: int | None, extractor, weights: str, settings: InceptionSettings
) -> torch.Tensor:
    """Real pool3 features `[n, 2048]`, cached when the dataset has a name."""
    name = settings.dataset_name or getattr(dataset, "name", None)
    count = len(real_subset_indices(len(dataset), n_real))
    resolution = getattr(dataset, "resolution", None) or dataset[0][0].shape[-1]
    split_name = getattr(dataset, "split", split)
    cache_name = None if name is None else real_cache_name(name, split_name, resolution, count, weights)
    return real_features(
        dataset,
        n_real,
        extractor,
        cache_name=cache_name,
        cache_root=settings.cache_root,
        batch_size=settings.batch_size,
        cuda=settings.cuda,
        save_cpu_ram=settings.save_cpu_ram,
        verbose=settings.verbose,
    )


def measure(
    measurement: Measurement,
    fake: dict[str, torch.Tensor],
    real_pool3: torch.Tensor | None,
    settings: InceptionSettings,
) -> dict[str, float]:
    """The metrics of one measurement from the generated features (first `n_fake` rows) and real pool3."""
    n_fake = measurement.n_fake
    pool3, logits = fake[FID_LAYER][:n_fake], fake[IS_LAYER][:n_fake]  # [n, 2048], [n, 1008]
    results: dict[str, float] = {}
    if "is" in measurement.metrics:
        results.update(inception_score(logits, min(settings.is_splits, n_fake), settings.seed))
    if "fid" in measurement.metrics:
        results["fid"] = frechet_inception_distance(pool3, real_pool3)
    if "kid" in measurement.metrics:
        results.update(
            kernel_inception_distance(
                pool3, real_pool3, settings.kid_subset_size, settings.kid_subsets, settings.seed
            )
        )
    if "prc" in measurement.metrics:
        results.update(precision_recall(pool3, real_pool3))
    results["n_fake"] = n_fake
    if measurement.needs_real():
        results["n_real"] = len(real_pool3)
    return {f"{key}{measurement.suffix}": value for key, value in results.items()}


def precision_recall(features_fake: torch.Tensor, features_real: torch.Tensor) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) through torch-fidelity's k-NN balls (k = 3),
    on the Inception pool3 features the other metrics use, as StudioGAN computes them (torch-fidelity's own
    default is VGG-16 features, whose weights would be one more download). Precision is the share of fakes
    inside some real sample's ball, recall the share of reals inside some fake's (docs/methods.md §9.4)."""
    from torch_fidelity.metric_prc import calculate_precision_recall_part

    precision, recall = calculate_precision_recall_part(
        features_fake.double(), features_real.double(), neighborhood=PRC_NEIGHBORHOOD
    )
    return {"precision": float(precision), "recall": float(recall)}


def _mean_over_draws(draws: list[dict[str, float]]) -> dict[str, float]:
    """Metrics averaged over draws; the counts (`n_*`, the same in every draw) kept as they are."""
    return {
        key: value if key.startswith("n_") else sum(draw[key] for draw in draws) / len(draws)
        for key, value in draws[0].items()
    }


def balanced_protocol(protocol: Protocol, num_classes: int) -> Protocol:
    """The protocol with every generated count rounded down to a multiple of `num_classes`."""
    measurements = tuple(
        replace(m, n_fake=balanced_count(m.n_fake, num_classes)) for m in protocol.measurements
    )
    return replace(protocol, measurements=measurements)


def measure_intra_fid(
    measurement: Measurement,
    fake_pool3: torch.Tensor,
    fake_labels: torch.Tensor,
    real_pool3: torch.Tensor,
    real_labels: torch.Tensor,
    num_classes: int,
) -> dict[str, float]:
    """`intra_fid` (with the measurement's suffix) of the first `n_fake` generated images against the real
    pool3 features, class by class (docs/methods.md §9.8)."""
    n_fake = measurement.n_fake
    value = intra_frechet_distance(
        fake_pool3[:n_fake], fake_labels[:n_fake], real_pool3, real_labels, num_classes
    )
    return {f"intra_fid{measurement.suffix}": value}


def inception_metrics(
    sample_fn: SampleFn,
    real: Dataset | Mapping[str, Dataset],
    n_fake: int | None = None,
    n_real: int | None = None,
    protocol: str = "quick",
    n_draws: int | None = None,
    device: str | torch.device | None = None,
    **settings,
) -> dict[str, float]:
    """IS/FID/KID of `sample_fn(n) -> [n, C, H, W]` (in [−1, 1]) under a named protocol.

    `real` is the real dataset, or a mapping split -> dataset when the protocol names several splits.
    `n_fake`, `n_real`, `n_draws` override the protocol's counts. `device` defaults to CUDA when present.
    Other keywords are `InceptionSettings` fields (e.g. `weights_path`, `dataset_name` to cache real
    features, `batch_size`, `seed`). Returns flat numbers: `is`, `is_std`, `fid`, `kid`, `kid_std` (with
    the measurement's suffix), the counts used and `n_draws`.
    """
    return _run_protocol(sample_fn, None, real, n_fake, n_real, protocol, n_draws, device, settings)


def conditional_inception_metrics(
    cond_sample_fn: CondSampleFn,
    real: Dataset | Mapping[str, Dataset],
    num_classes: int,
    n_fake: int | None = None,
    n_real: int | None = None,
    protocol: str = "quick",
    n_draws: int | None = None,
    device: str | torch.device | None = None,
    **settings,
) -> dict[str, float]:
    """`inception_metrics` of a class-conditional sampler `cond_sample_fn(n, labels) -> [n, C, H, W]`, asked
    for `balanced_labels` (every generated count rounded down to a multiple of `num_classes`), plus
    `intra_fid` for each measurement with FID (with its suffix): the mean over classes of the FID between
    the generated images of class `k` among the measurement's `n_fake` and the real images of class `k`
    among its `n_real` (docs/methods.md §9.8). The real labels are read with `dataset_labels`.
    """
    return _run_protocol(
        None, (cond_sample_fn, num_classes), real, n_fake, n_real, protocol, n_draws, device, settings
    )


def _run_protocol(
    sample_fn: SampleFn | None,
    conditional: tuple[CondSampleFn, int] | None,
    real: Dataset | Mapping[str, Dataset],
    n_fake: int | None,
    n_real: int | None,
    protocol: str,
    n_draws: int | None,
    device: str | torch.device | None,
    settings: dict,
) -> dict[str, float]:
    """One protocol run; `conditional` = (sampler, number of classes) adds the intra-class FIDs."""
    chosen = override_counts(PROTOCOLS.get(protocol), n_fake, n_real)
    if conditional is not None:
        chosen = balanced_protocol(chosen, conditional[1])
    draws_count = chosen.n_draws if n_draws is None else n_draws
    use_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    config = inception_settings(cuda=use_cuda, **settings)
    real_by_split = real_splits_for(chosen, real)
    real_keys = list(dict.fromkeys((m.split, m.n_real) for m in chosen.measurements if m.needs_real()))
    # labels first: unlabeled data fails before the weights are read
    real_labels = {} if conditional is None else _real_labels(real_by_split, real_keys, conditional[1])
    weights = resolve_inception_weights(config.weights_path)
    extractor = inception_extractor(weights, use_cuda)
    tag = weights_tag(weights)
    real_pool3 = {
        (split, count): _real_pool3(real_by_split[split], split, count, extractor, tag, config)
        for split, count in real_keys
    }
    n_generated = max(m.n_fake for m in chosen.measurements)
    fake_labels = None if conditional is None else balanced_labels(n_generated, conditional[1])
    draws = []
    for _ in range(draws_count):
        if conditional is not None:
            sample_fn = labelled_sampler(conditional[0], fake_labels)
        fake = fake_features(sample_fn, n_generated, extractor, config.batch_size, use_cuda, config.verbose)
        results: dict[str, float] = {}
        for m in chosen.measurements:
            key = (m.split, m.n_real)
            results.update(measure(m, fake, real_pool3.get(key), config))
            if conditional is not None and "fid" in m.metrics:
                results.update(
                    measure_intra_fid(
                        m, fake[FID_LAYER], fake_labels, real_pool3[key], real_labels[key], conditional[1]
                    )
                )
        draws.append(results)
    return {**_mean_over_draws(draws), "n_draws": draws_count}


def _real_labels(
    real_by_split: dict[str, Dataset], keys: list[tuple], num_classes: int
) -> dict[tuple, torch.Tensor]:
    """The labels `[n]` of the real images each measurement compares against (the same subset as its
    features), checked to lie in `0 … num_classes − 1`."""
    labels = {}
    for split, count in keys:
        dataset = real_by_split[split]
        labels[split, count] = dataset_labels(dataset, real_subset_indices(len(dataset), count))
        check_labels(labels[split, count], num_classes, f"the real split {split!r}")
    return labels
