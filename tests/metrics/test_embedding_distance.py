"""Fréchet and kernel distances against slow direct references, and their statistical behaviour."""

import numpy as np
import pytest
import scipy.linalg
import torch

from audiocraft_mmd.metrics.embedding_distance import embedding_distances, frechet_distance, kernel_distance


def slow_frechet(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula with scipy's general matrix square root."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    sigma_x, sigma_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(sigma_x @ sigma_y).real
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(sigma_x + sigma_y - 2 * root))


def slow_kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with (a.b/d + 1)^3, pair by pair."""
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_matches_slow_reference(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, 6)) @ rng.standard_normal((6, 6))
    y = rng.standard_normal((30, 6)) * 1.5 + 0.3
    assert frechet_distance(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(slow_frechet(x, y), rel=1e-8)
    assert kernel_distance(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(slow_kid(x, y), rel=1e-9)


def test_frechet_of_gaussians_matches_closed_form():
    # Isotropic Gaussians: FD = |mu|^2 + d (s1 - s2)^2 exactly for the population; large samples approach it.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 4, generator=g, dtype=torch.float64)
    y = 2 * torch.randn(20000, 4, generator=g, dtype=torch.float64) + 1
    assert frechet_distance(x, y) == pytest.approx(4 * 1 + 4 * (1 - 2) ** 2, rel=0.03)
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-6)


def test_kernel_distance_is_unbiased_under_the_null_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    null = [kernel_distance(torch.randn(20, 8, generator=g), torch.randn(20, 8, generator=g)) for _ in range(300)]
    spread = float(np.std(null))
    assert abs(float(np.mean(null))) < 3 * spread / np.sqrt(len(null))  # mean 0 even at n = 20
    assert min(null) < 0  # unbiased, so not clamped
    shifted = kernel_distance(torch.randn(20, 8, generator=g), torch.randn(20, 8, generator=g) + 1)
    assert shifted > 5 * spread


def slow_grouped_kid(x, y, gx, gy) -> float:
    """Within-set averages over pairs of different groups only."""
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    def within(z, g):
        values = [k(z[i], z[j]) for i in range(len(z)) for j in range(len(z)) if g[i] != g[j]]
        return sum(values) / len(values)
    return within(x, gx) + within(y, gy) - 2 * np.mean([k(a, b) for a in x for b in y])


def test_grouped_kernel_distance_matches_slow_reference_and_is_unbiased_for_clustered_data():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal((9, 3))
    gx, gy = [i // 3 for i in range(12)], [i // 2 for i in range(9)]
    result = embedding_distances(torch.from_numpy(x), torch.from_numpy(y), gx, gy, draws=0)["kernel"]
    assert result.value == pytest.approx(slow_grouped_kid(x, y, gx, gy), rel=1e-9)
    # Tracks of 6 correlated patches (shared offset): two sets of tracks from one law.
    g = torch.Generator().manual_seed(1)
    def tracks(n):
        return (torch.randn(n, 1, 8, generator=g) + 0.5 * torch.randn(n, 6, 8, generator=g)).reshape(n * 6, 8)
    labels = [i // 6 for i in range(60)]
    grouped, pooled = [], []
    for _ in range(100):
        a, b = tracks(10), tracks(10)
        grouped.append(embedding_distances(a, b, labels, labels, draws=0)["kernel"].value)
        pooled.append(kernel_distance(a, b))
    se = np.std(grouped) / np.sqrt(len(grouped))
    assert abs(np.mean(grouped)) < 3 * se
    assert np.mean(pooled) > 10 * np.std(pooled) / np.sqrt(len(pooled))  # patches as independent: biased up


def test_paired_sets_leave_out_cross_pairs_of_one_unit():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 4))
    y = x + 0.3 * rng.standard_normal((10, 4))
    labels = [i // 2 for i in range(10)]
    paired = embedding_distances(torch.from_numpy(x), torch.from_numpy(y), labels, labels, draws=20, paired=True)
    d = 4
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    def mean_over(a, b, ga, gb):
        return np.mean([k(a[i], b[j]) for i in range(10) for j in range(10) if ga[i] != gb[j]])
    expected = mean_over(x, x, labels, labels) + mean_over(y, y, labels, labels) - 2 * mean_over(x, y, labels, labels)
    assert paired["kernel"].value == pytest.approx(expected, rel=1e-9)
    same = embedding_distances(torch.from_numpy(x), torch.from_numpy(x), labels, labels, draws=20, paired=True)
    assert same["kernel"].value == pytest.approx(0, abs=1e-9) and same["kernel"].ci_high == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="same group labels"):
        embedding_distances(torch.from_numpy(x), torch.from_numpy(y), labels, [9] * 10, paired=True)


def test_bootstrap_interval_contains_the_estimate_and_grows_with_groups():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 5, generator=g), torch.randn(200, 5, generator=g) + 0.5
    result = embedding_distances(x, y, draws=100)
    for distance in result.values():
        assert distance.ci_low <= distance.value <= distance.ci_high and distance.draws == 100
    # Rows repeated 10 times inside groups: resampling rows would be far too confident.
    xr, yr = x[:20].repeat_interleave(10, 0), y[:20].repeat_interleave(10, 0)
    naive = embedding_distances(xr, yr, draws=100)["kernel"]
    grouped = embedding_distances(xr, yr, groups_x=[i // 10 for i in range(200)],
                                  groups_y=[i // 10 for i in range(200)], draws=100)["kernel"]
    assert grouped.ci_high - grouped.ci_low > 2 * (naive.ci_high - naive.ci_low)
    assert embedding_distances(x, y, draws=0)["frechet"].draws == 0
    near = embedding_distances(x[:20], x[20:40], draws=100)["frechet"]
    assert near.ci_low >= 0  # clipped: a Fréchet distance is never negative


def test_bad_inputs():
    with pytest.raises(ValueError, match="same d"):
        kernel_distance(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        embedding_distances(torch.full((4, 3), float("nan")), torch.zeros(4, 3))


def test_kernel_interval_covers_zero_for_two_samples_of_one_law():
    """Clustered data (groups sharing an offset): the group bootstrap's 95 % interval should hold 0
    about 95 % of the time; resampling single rows instead would be far too narrow."""
    g = torch.Generator().manual_seed(4)

    def tracks(n):
        return (torch.randn(n, 1, 8, generator=g) + 0.5 * torch.randn(n, 4, 8, generator=g)).reshape(n * 4, 8)
    labels = [i // 4 for i in range(40)]
    covered = 0
    trials = 60
    for trial in range(trials):
        kernel = embedding_distances(tracks(10), tracks(10), labels, labels, draws=50, seed=trial)["kernel"]
        covered += kernel.ci_low <= 0 <= kernel.ci_high
    assert 0.85 <= covered / trials <= 1.0, covered


def test_large_sets_are_subsampled_to_max_rows():
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(300, 4, generator=g), torch.randn(250, 4, generator=g) + 1
    capped = embedding_distances(x, y, [i // 3 for i in range(300)], None, draws=5, max_rows=100)
    full = embedding_distances(x, y, [i // 3 for i in range(300)], None, draws=0)
    assert capped["kernel"].rows_x == capped["kernel"].rows_y == 100 and full["kernel"].rows_x == 300
    assert capped["kernel"].value == pytest.approx(full["kernel"].value, rel=0.3)  # same law, fewer rows
    paired = embedding_distances(x, x.clone(), list(range(300)), list(range(300)), draws=5, paired=True, max_rows=50)
    assert paired["kernel"].value == pytest.approx(0, abs=1e-9) and paired["kernel"].rows_x == 50
