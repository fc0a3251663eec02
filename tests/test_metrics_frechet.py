"""Fréchet distance (Heusel et al. 2017, Eq. 6) against closed forms and an independent sqrtm formula."""

import numpy as np
import pytest
import scipy.linalg
import torch

from lipgan.metrics.frechet import (
    feature_statistics,
    frechet_distance,
    frechet_distance_low_rank,
    frechet_distance_of_features,
)


def random_orthogonal(dim: int, rng: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=rng, dtype=torch.float64))
    return q


def closed_form_commuting(mu1, mu2, eig1, eig2) -> float:
    """FID of Gaussians whose covariances share eigenvectors: ‖μ₁ − μ₂‖² + Σᵢ(√aᵢ − √bᵢ)²."""
    return float(((mu1 - mu2) ** 2).sum() + ((eig1.sqrt() - eig2.sqrt()) ** 2).sum())


def test_diagonal_covariances_match_closed_form():
    rng = torch.Generator().manual_seed(0)
    mu1, mu2 = (
        torch.randn(6, generator=rng, dtype=torch.float64),
        torch.randn(6, generator=rng, dtype=torch.float64),
    )
    a = torch.rand(6, generator=rng, dtype=torch.float64) * 3 + 0.1
    b = torch.rand(6, generator=rng, dtype=torch.float64) * 3 + 0.1
    expected = closed_form_commuting(mu1, mu2, a, b)
    got = frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_commuting_covariances_match_closed_form():
    rng = torch.Generator().manual_seed(1)
    q = random_orthogonal(8, rng)
    a = torch.rand(8, generator=rng, dtype=torch.float64) * 2 + 0.1
    b = torch.rand(8, generator=rng, dtype=torch.float64) * 2 + 0.1
    mu1, mu2 = torch.randn(8, generator=rng, dtype=torch.float64), torch.zeros(8, dtype=torch.float64)
    sigma1, sigma2 = q @ torch.diag(a) @ q.T, q @ torch.diag(b) @ q.T
    expected = closed_form_commuting(mu1, mu2, a, b)
    torch.testing.assert_close(frechet_distance(mu1, sigma1, mu2, sigma2), expected, rtol=1e-10, atol=1e-11)


def test_general_covariances_match_scipy_sqrtm():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 10)), rng.normal(size=(10, 10))
    sigma1, sigma2 = a @ a.T + 0.5 * np.eye(10), b @ b.T + 0.5 * np.eye(10)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * covmean))
    torch.testing.assert_close(frechet_distance(mu1, sigma1, mu2, sigma2), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n_rows", [50, 9000])  # one chunk, three chunks
def test_statistics_match_numpy(n_rows):
    features = torch.randn(n_rows, 7, generator=torch.Generator().manual_seed(3)) + 2.0
    mean, covariance = feature_statistics(features)
    as_numpy = features.double().numpy()
    torch.testing.assert_close(mean, torch.from_numpy(as_numpy.mean(axis=0)), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(
        covariance, torch.from_numpy(np.cov(as_numpy, rowvar=False)), rtol=1e-12, atol=1e-14
    )
    assert mean.dtype == covariance.dtype == torch.float64


# With N < D the two covariances have different null spaces, where tr √(Σ₁Σ₂) has an infinite derivative:
# the statistics route carries round-off of relative size √ε ≈ 1.5e-8 there (the problem's conditioning).
@pytest.mark.parametrize(("n1", "n2", "dim", "rtol"), [(30, 45, 64, 1e-7), (300, 250, 12, 1e-10)])
def test_feature_route_equals_statistics_route(n1, n2, dim, rtol):
    rng = torch.Generator().manual_seed(4)
    x = torch.randn(n1, dim, generator=rng, dtype=torch.float64) * 2 + 0.3
    y = (
        torch.randn(n2, dim, generator=rng, dtype=torch.float64)
        @ torch.randn(dim, dim, generator=rng).double()
    )
    via_statistics = frechet_distance(*feature_statistics(x), *feature_statistics(y))
    via_features = frechet_distance_low_rank(x, y)
    torch.testing.assert_close(via_features, via_statistics, rtol=rtol, atol=0.0)
    torch.testing.assert_close(frechet_distance_of_features(x, y), via_statistics, rtol=rtol, atol=0.0)


def test_self_distance_is_zero_with_fewer_samples_than_dimensions():
    features = torch.randn(40, 2048, generator=torch.Generator().manual_seed(5)) * 3 + 1  # rank 39 of 2048
    scale = float(feature_statistics(features)[1].trace())
    assert abs(frechet_distance_of_features(features, features)) <= 1e-12 * scale
    mean, covariance = feature_statistics(features[:, :256])
    assert abs(frechet_distance(mean, covariance, mean, covariance)) <= 1e-12 * scale


def test_symmetric():
    rng = torch.Generator().manual_seed(6)
    x = torch.randn(40, 32, generator=rng, dtype=torch.float64)
    y = torch.randn(60, 32, generator=rng, dtype=torch.float64) * 1.5
    stats_x, stats_y = feature_statistics(x), feature_statistics(y)
    forward, backward = frechet_distance(*stats_x, *stats_y), frechet_distance(*stats_y, *stats_x)
    torch.testing.assert_close(forward, backward, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        frechet_distance_of_features(x, y), frechet_distance_of_features(y, x), rtol=1e-12, atol=1e-12
    )


def test_inconsistent_shapes_raise():
    with pytest.raises(ValueError, match="inconsistent statistics"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="feature dimensions differ"):
        frechet_distance_of_features(torch.zeros(5, 3), torch.zeros(5, 4))
