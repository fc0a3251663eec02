"""2-D mixture metrics on samples whose answers are known exactly."""

import math

import pytest
import torch

from lipgan.errors import ConfigError
from lipgan.metrics import EVALUATORS, evaluator_kind, toy_metrics

STD = 0.05


def ring_centers(n_modes: int) -> torch.Tensor:
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return torch.stack([angles.cos(), angles.sin()], dim=1)  # [K, 2]


class RingStandIn:
    """What the evaluator reads from a toy-mixture dataset."""

    kind = "points"

    def __init__(self, n_modes: int):
        self.centers, self.std = ring_centers(n_modes), STD


def test_samples_at_every_centre():
    centers = ring_centers(8)
    points = centers.repeat(5, 1)  # 5 samples on each centre
    assert toy_metrics(points, centers, STD) == {"modes_covered": 8, "hq_fraction": 1.0, "mode_kl": 0.0}


def test_half_of_the_modes_gives_log_2():
    centers = ring_centers(8)
    points = centers[::2].repeat(3, 1)  # 4 of 8 modes, evenly
    metrics = toy_metrics(points, centers, STD)
    assert metrics["modes_covered"] == 4 and metrics["hq_fraction"] == 1.0
    torch.testing.assert_close(metrics["mode_kl"], math.log(2), rtol=1e-12, atol=0.0)


def test_uneven_histogram_matches_the_kl_formula():
    centers = ring_centers(4)
    points = torch.cat([centers[0:1].repeat(3, 1), centers[1:2]])  # histogram [3/4, 1/4, 0, 0]
    expected = 0.75 * math.log(0.75 * 4) + 0.25 * math.log(0.25 * 4)
    torch.testing.assert_close(toy_metrics(points, centers, STD)["mode_kl"], expected, rtol=1e-12, atol=0.0)


def test_mode_kl_counts_only_the_high_quality_samples():
    centers = ring_centers(4)  # (1, 0), (0, 1), (−1, 0), (0, −1)
    on_modes = torch.cat([centers[0:1].repeat(3, 1), centers[1:2]])  # histogram [3/4, 1/4, 0, 0]
    # 4 samples 0.5 from centre 2, nearest to it but far outside 3σ: they must not enter the histogram
    off_mode = centers[2:3].repeat(4, 1) + torch.tensor([[-0.5, 0.0]], dtype=torch.float64)
    metrics = toy_metrics(torch.cat([on_modes, off_mode]), centers, STD)
    assert metrics["modes_covered"] == 2 and metrics["hq_fraction"] == 0.5
    expected = 0.75 * math.log(0.75 * 4) + 0.25 * math.log(0.25 * 4)
    torch.testing.assert_close(metrics["mode_kl"], expected, rtol=1e-12, atol=0.0)
    # over all samples it would be the histogram [3/8, 1/8, 4/8, 0], a different number
    over_all = sum(p * math.log(4 * p) for p in (3 / 8, 1 / 8, 4 / 8))
    assert abs(over_all - expected) > 0.1


def test_far_away_noise_has_no_high_quality_samples():
    centers = ring_centers(8)
    points = torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.1 + 10.0
    metrics = toy_metrics(points, centers, STD)
    assert metrics["modes_covered"] == 0 and metrics["hq_fraction"] == 0.0
    torch.testing.assert_close(metrics["mode_kl"], math.log(8), rtol=1e-12, atol=0.0)


def test_three_sigma_boundary():
    centers = ring_centers(4)
    inside = centers[0] + torch.tensor([2.99 * STD, 0.0], dtype=torch.float64)
    outside = centers[1] + torch.tensor([0.0, 3.01 * STD], dtype=torch.float64)
    metrics = toy_metrics(torch.stack([inside, outside]), centers, STD)
    assert metrics["modes_covered"] == 1 and metrics["hq_fraction"] == 0.5


def test_points_evaluator():
    dataset = RingStandIn(8)
    assert evaluator_kind(dataset) == "points"
    result = EVALUATORS.get("points")(lambda n: dataset.centers.repeat(n // 8, 1), dataset, 64)
    assert result == {"modes_covered": 8, "hq_fraction": 1.0, "mode_kl": 0.0}
    with pytest.raises(ConfigError, match="takes no options"):
        EVALUATORS.get("points")(lambda n: dataset.centers, dataset, 8, protocol="quick")
