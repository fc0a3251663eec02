"""Sample-quality metrics: IS/FID/KID through torch-fidelity under the papers' protocols, the
embedded-digits classifier metrics and the 2-D mixture metrics, all computed in float64; for
class-conditional generators also the class accuracy and the intra-class FID (docs/methods.md §9.8)."""

from lipgan.metrics.conditional import (
    balanced_labels,
    dataset_labels,
    intra_frechet_distance,
    labelled_sampler,
)
from lipgan.metrics.digits import (
    DigitsClassifier,
    classifier_score,
    digits_accuracy,
    digits_conditional_metrics,
    digits_metrics,
    digits_reference,
    load_digits_classifier,
    load_digits_split,
)
from lipgan.metrics.evaluators import EVALUATORS, evaluator_kind
from lipgan.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_of_features
from lipgan.metrics.inception import (
    INCEPTION_WEIGHTS_ENV,
    INCEPTION_WEIGHTS_URL,
    SampleFnGenerator,
    UInt8ImageDataset,
    generator_sample_fn,
    images_to_uint8,
    resolve_inception_weights,
    write_random_inception_weights,
)
from lipgan.metrics.protocols import (
    PROTOCOLS,
    Measurement,
    Protocol,
    conditional_inception_metrics,
    inception_metrics,
)
from lipgan.metrics.toy import toy_metrics

__all__ = [
    "EVALUATORS",
    "INCEPTION_WEIGHTS_ENV",
    "INCEPTION_WEIGHTS_URL",
    "PROTOCOLS",
    "DigitsClassifier",
    "Measurement",
    "Protocol",
    "SampleFnGenerator",
    "UInt8ImageDataset",
    "balanced_labels",
    "classifier_score",
    "conditional_inception_metrics",
    "dataset_labels",
    "digits_accuracy",
    "digits_conditional_metrics",
    "digits_metrics",
    "digits_reference",
    "evaluator_kind",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_of_features",
    "generator_sample_fn",
    "images_to_uint8",
    "inception_metrics",
    "intra_frechet_distance",
    "labelled_sampler",
    "load_digits_classifier",
    "load_digits_split",
    "resolve_inception_weights",
    "toy_metrics",
    "write_random_inception_weights",
]
