"""One evaluation entry point per kind of data, with the uniform signature
`evaluate(sample_fn, dataset, n_samples, **options) -> dict`, where `sample_fn(n)` returns `n` generated
samples in the dataset's convention (`[n, 2]` points, `[n, C, H, W]` images in [−1, 1]).

- "points": `toy_metrics` against the dataset's `centers` and `std`;
- "digits": `digits_metrics` against the train digits, plus the real reference `digits_is_real`,
  `digits_fid_real` (test vs train digits, computed once per resolution and process);
- "image": `inception_metrics` (options: `protocol`, `real` = a mapping split -> dataset, counts and
  `InceptionSettings` fields).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch.utils.data import Dataset

from lipgan.errors import ConfigError
from lipgan.metrics.digits import digits_metrics, digits_reference, load_digits_split
from lipgan.metrics.inception import SampleFn
from lipgan.metrics.protocols import inception_metrics
from lipgan.metrics.toy import toy_metrics
from lipgan.registry import Registry

Evaluator = Callable[..., dict]
EVALUATORS: Registry[Evaluator] = Registry("evaluator")


def _reject_options(kind: str, options: dict) -> None:
    if options:
        raise ConfigError(f"the {kind} evaluator takes no options; got {sorted(options)}")


@EVALUATORS.register("points")
def evaluate_points(sample_fn: SampleFn, dataset: Dataset, n_samples: int, **options) -> dict:
    """Mode coverage, high-quality share and mode KL of `n_samples` generated points."""
    _reject_options("points", options)
    return toy_metrics(sample_fn(n_samples), dataset.centers, dataset.std)


@functools.lru_cache(maxsize=4)
def digits_reference_at(resolution: int) -> dict[str, float]:
    """`digits_is_real`, `digits_fid_real`: held-out digits against train digits at one resolution."""
    split = load_digits_split(resolution)
    reference = digits_reference(split.train_images, split.test_images)
    return {f"{name}_real": value for name, value in reference.items()}


@EVALUATORS.register("digits")
def evaluate_digits(sample_fn: SampleFn, dataset: Dataset, n_samples: int, **options) -> dict:
    """`digits_is`, `digits_fid` of `n_samples` generated digits against the train digits at the
    dataset's resolution, with the real reference alongside."""
    _reject_options("digits", options)
    resolution = dataset.resolution
    fake = sample_fn(n_samples)  # [n, 1, r, r]
    metrics = digits_metrics(fake, load_digits_split(resolution).train_images)
    return {**metrics, **digits_reference_at(resolution)}


@EVALUATORS.register("image")
def evaluate_images(sample_fn: SampleFn, dataset: Dataset, n_samples: int | None, **options) -> dict:
    """IS/FID/KID under `options["protocol"]` (default "quick"), `n_samples` generated images per
    measurement (None: the protocol's counts); real data is `options["real"]` when given, else `dataset`."""
    real = options.pop("real", dataset)
    return issue_metric_names(inception_metrics(sample_fn, real, n_fake=n_samples, **options))


def issue_metric_names(metrics: dict) -> dict:
    """`is`/`kid` (and their per-split versions) as `is_mean`/`kid_mean`, the names of eval.jsonl."""
    renamed = {}
    for key, value in metrics.items():
        for short in ("is", "kid"):
            if key == short or (key.startswith(short + "_") and not key.startswith(short + "_std")):
                key = short + "_mean" + key[len(short) :]
                break
        renamed[key] = value
    return renamed


def evaluator_kind(dataset: Dataset, dataset_name: str | None = None) -> str:
    """The `EVALUATORS` key of a dataset: its `kind`, except that the embedded digits use "digits"."""
    name = dataset_name or getattr(dataset, "name", None)
    return "digits" if name == "digits" else dataset.kind
