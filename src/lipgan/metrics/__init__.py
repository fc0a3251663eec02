"""Sample-quality metrics: IS/FID/KID through torch-fidelity under the papers' protocols, the
embedded-digits classifier metrics and the 2-D mixture metrics, all computed in float64."""

from lipgan.metrics.digits import (
    DigitsClassifier,
    classifier_score,
    digits_accuracy,
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
from lipgan.metrics.protocols import PROTOCOLS, Measurement, Protocol, inception_metrics
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
    "classifier_score",
    "digits_accuracy",
    "digits_metrics",
    "digits_reference",
    "evaluator_kind",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_of_features",
    "generator_sample_fn",
    "images_to_uint8",
    "inception_metrics",
    "load_digits_classifier",
    "load_digits_split",
    "resolve_inception_weights",
    "toy_metrics",
    "write_random_inception_weights",
]
