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

Class-conditional generators (docs/methods.md §9.8) are measured by a spec's `conditional`,
`conditional(cond_sample_fn, dataset, n_samples, num_classes, **options) -> dict`, with
`cond_sample_fn(n, labels) -> samples`, `labels` int64 `[n]` on the CPU, and the same options as
`evaluate`. It asks for balanced labels, `n_samples // num_classes` of each class (`n_samples` rounded down
to a multiple of `num_classes`; fewer samples than classes is a `ConfigError`), in the cyclic order of
`balanced_labels`, and returns what `evaluate` returns, measured on those samples, plus:
- "digits": `digits_cond_acc`, `digits_intra_fid` and their references `digits_cond_acc_real` (the
  classifier's accuracy on the test digits), `digits_intra_fid_real` (test vs train digits, class by class),
  computed once per resolution and process;
- "image": `intra_fid` (with the suffix of each FID measurement) against the protocol's real split(s).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.data import Dataset

from lipgan.errors import ConfigError
from lipgan.metrics.conditional import CondSampleFn, balanced_labels
from lipgan.metrics.digits import (
    N_CLASSES,
    digits_conditional_metrics,
    digits_conditional_reference,
    digits_metrics,
    digits_reference,
    load_digits_split,
)
from lipgan.metrics.inception import SampleFn
from lipgan.metrics.protocols import conditional_inception_metrics, inception_metrics
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
    generated samples per evaluation when `eval.n_samples` is 0 (None: the protocol's own counts), the
    builder of the function's keyword options, and the evaluation of class-conditional generators, `None`
    where there is none (its signature in the module docstring; docs/methods.md §9.8)."""

    evaluate: Evaluator
    primary: str
    lower_is_better: bool
    default_samples: int | None
    options: OptionsFn = no_options
    conditional: Evaluator | None = None

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


@functools.lru_cache(maxsize=4)
def digits_conditional_reference_at(resolution: int) -> dict[str, float]:
    """`digits_cond_acc_real`, `digits_intra_fid_real`: the test digits with their own labels against the
    train digits at one resolution (docs/methods.md §9.8)."""
    split = load_digits_split(resolution)
    reference = digits_conditional_reference(
        split.train_images, split.train_labels, split.test_images, split.test_labels
    )
    return {f"{name}_real": reference[name] for name in ("digits_cond_acc", "digits_intra_fid")}


def evaluate_digits_conditional(
    cond_sample_fn: CondSampleFn, dataset: Dataset, n_samples: int, num_classes: int, **options
) -> dict:
    """`evaluate_digits` of balanced class-conditional digits, plus `digits_cond_acc` and
    `digits_intra_fid` against the train digits and their real references (docs/methods.md §9.8)."""
    _reject_options("digits", options)
    if num_classes != N_CLASSES:
        raise ConfigError(f"the digits have {N_CLASSES} classes; the generator has num_classes={num_classes}")
    resolution = dataset.resolution
    labels = balanced_labels(n_samples, num_classes)  # [n]
    fake = cond_sample_fn(len(labels), labels)  # [n, 1, r, r]
    split = load_digits_split(resolution)
    metrics = digits_conditional_metrics(fake, labels, split.train_images, split.train_labels)
    return {**metrics, **digits_reference_at(resolution), **digits_conditional_reference_at(resolution)}


def evaluate_images(sample_fn: SampleFn, dataset: Dataset, n_samples: int | None, **options) -> dict:
    """IS/FID/KID under `options["protocol"]` (default "quick"), `n_samples` generated images per
    measurement (None: the protocol's counts); real data is `options["real"]` when given, else `dataset`."""
    real = options.pop("real", dataset)
    return eval_jsonl_names(inception_metrics(sample_fn, real, n_fake=n_samples, **options))


def evaluate_images_conditional(
    cond_sample_fn: CondSampleFn, dataset: Dataset, n_samples: int | None, num_classes: int, **options
) -> dict:
    """`evaluate_images` of balanced class-conditional images, plus `intra_fid` per FID measurement
    (docs/methods.md §9.8)."""
    real = options.pop("real", dataset)
    return eval_jsonl_names(
        conditional_inception_metrics(cond_sample_fn, real, num_classes, n_fake=n_samples, **options)
    )


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
EVALUATORS.register("digits")(
    EvaluatorSpec(evaluate_digits, "digits_fid", True, 2000, conditional=evaluate_digits_conditional)
)
EVALUATORS.register("image")(
    EvaluatorSpec(evaluate_images, "fid", True, None, image_options, evaluate_images_conditional)
)


def evaluator_kind(dataset: Dataset, dataset_name: str | None = None) -> str:
    """The `EVALUATORS` key of a dataset: its `kind`, except that the embedded digits use "digits"."""
    name = dataset_name or getattr(dataset, "name", None)
    return "digits" if name == "digits" else dataset.kind
