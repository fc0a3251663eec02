"""The evaluation policy of each kind of data, in one place: an `EVALUATORS` entry is an `EvaluatorSpec`
carrying its function, the metric that decides the `best` checkpoint and its direction, the default sample
count and the builder of its options.

The functions share one signature, `evaluate(sample_fn, dataset, n_samples, **options) -> dict`, where
`sample_fn(n)` returns `n` generated samples in the dataset's convention (`[n, 2]` points, `[n, C, H, W]`
images in [−1, 1]); a spec is callable the same way.

- "points": `toy_metrics` against the dataset's `centers` and `std`;
- "digits": `digits_metrics` against the train digits, plus the real reference `digits_is_real`,
  `digits_fid_real` (test vs train digits, computed once per resolution and process);
- "image": `inception_metrics` (options: `protocol`, `real` = a mapping split -> dataset, counts and
  `InceptionSettings` fields).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.data import Dataset

from lipgan.errors import ConfigError
from lipgan.metrics.digits import digits_metrics, digits_reference, load_digits_split
from lipgan.metrics.inception import SampleFn
from lipgan.metrics.protocols import inception_metrics
from lipgan.metrics.toy import toy_metrics
from lipgan.registry import Registry

Evaluator = Callable[..., dict]
# (eval settings: protocol, batch_size, inception_weights; data name; dataset; device; load_split) -> options
OptionsFn = Callable[..., dict]


def no_options(settings, data_name: str, dataset: Dataset, device, load_split) -> dict:
    return {}


@dataclass(frozen=True)
class EvaluatorSpec:
    """One kind of data's evaluation: the function, its primary metric (`best` follows it; protocols with
    several real splits name it `<primary>_<split>`, and the first decides), whether lower is better, the
    generated samples per evaluation when `eval.n_samples` is 0 (None: the protocol's own counts), and the
    builder of the function's keyword options."""

    evaluate: Evaluator
    primary: str
    lower_is_better: bool
    default_samples: int | None
    options: OptionsFn = no_options

    def __call__(self, sample_fn: SampleFn, dataset: Dataset, n_samples: int | None, **options) -> dict:
        return self.evaluate(sample_fn, dataset, n_samples, **options)

    def primary_value(self, metrics: dict) -> float | None:
        key = self.primary
        return next((v for k, v in metrics.items() if k == key or k.startswith(key + "_")), None)

    def improves(self, value: float, best: float | None) -> bool:
        return best is None or (value < best if self.lower_is_better else value > best)


EVALUATORS: Registry[EvaluatorSpec] = Registry("evaluator")


def _reject_options(kind: str, options: dict) -> None:
    if options:
        raise ConfigError(f"the {kind} evaluator takes no options; got {sorted(options)}")


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


def evaluate_digits(sample_fn: SampleFn, dataset: Dataset, n_samples: int, **options) -> dict:
    """`digits_is`, `digits_fid` of `n_samples` generated digits against the train digits at the
    dataset's resolution, with the real reference alongside."""
    _reject_options("digits", options)
    resolution = dataset.resolution
    fake = sample_fn(n_samples)  # [n, 1, r, r]
    metrics = digits_metrics(fake, load_digits_split(resolution).train_images)
    return {**metrics, **digits_reference_at(resolution)}


def evaluate_images(sample_fn: SampleFn, dataset: Dataset, n_samples: int | None, **options) -> dict:
    """IS/FID/KID under `options["protocol"]` (default "quick"), `n_samples` generated images per
    measurement (None: the protocol's counts); real data is `options["real"]` when given, else `dataset`."""
    real = options.pop("real", dataset)
    return eval_jsonl_names(inception_metrics(sample_fn, real, n_fake=n_samples, **options))


def eval_jsonl_names(metrics: dict) -> dict:
    """`is`/`kid` (and their per-split versions) as `is_mean`/`kid_mean`, the names of eval.jsonl."""
    renamed = {}
    for key, value in metrics.items():
        for short in ("is", "kid"):
            if key == short or (key.startswith(short + "_") and not key.startswith(short + "_std")):
                key = short + "_mean" + key[len(short) :]
                break
        renamed[key] = value
    return renamed


def image_options(settings, data_name: str, dataset: Dataset, device, load_split) -> dict:
    """Protocol ("auto" means "quick"), Inception weights and the real-statistics cache key (dataset and
    resolution) for IS/FID/KID; protocols measured against several splits get each one from `load_split`."""
    from lipgan.metrics.protocols import PROTOCOLS

    protocol = "quick" if settings.protocol == "auto" else settings.protocol
    splits = PROTOCOLS.get(protocol).splits()
    real = {split: load_split(split) for split in splits} if len(splits) > 1 else dataset
    options = {
        "protocol": protocol,
        "real": real,
        "device": device,
        "batch_size": settings.batch_size,
        "dataset_name": f"{data_name}-{dataset.resolution}",
    }
    if settings.inception_weights:
        options["weights_path"] = settings.inception_weights
    return options


EVALUATORS.register("points")(EvaluatorSpec(evaluate_points, "mode_kl", True, 5000))
EVALUATORS.register("digits")(EvaluatorSpec(evaluate_digits, "digits_fid", True, 2000))
EVALUATORS.register("image")(EvaluatorSpec(evaluate_images, "fid", True, None, image_options))


def evaluator_kind(dataset: Dataset, dataset_name: str | None = None) -> str:
    """The `EVALUATORS` key of a dataset: its `kind`, except that the embedded digits use "digits"."""
    name = dataset_name or getattr(dataset, "name", None)
    return "digits" if name == "digits" else dataset.kind
