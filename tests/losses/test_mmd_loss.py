"""Tests of the independence-promoting MMD loss (audiocraft_mmd.losses). CPU only, a few seconds."""

import itertools
import math
import typing as tp

from hypothesis import given, settings, strategies as st
import pytest
import torch

from audiocraft_mmd.losses import (
    DEFAULT_BANDWIDTHS,
    ESTIMATORS,
    PAPER_BANDWIDTHS,
    MMDIndependence,
    MMDIndependenceLoss,
    align_streams,
    get_estimator,
    mmd_independence,
    register_estimator,
)
from audiocraft_mmd.losses.mmd import STANDARDIZE_EPS, standardize_codebooks, standardize_features
from audiocraft_mmd.losses.mmd_estimators import permutation_indices, product_of_marginals, squared_distances

# The default training batch as the loss sees it: B clips x T' aligned frames = N = 400 rows,
# each the K = 4 codebook vectors of dimension D = 128 of the 32 kHz EnCodec.
B = 8
T_ALIGNED = 50
K = 4
D = 128
NUM_INDEPENDENT_DRAWS = 12


# ---------------------------------------------------------------------------------------------------
# Brute-force reference (float64, python loops)
# ---------------------------------------------------------------------------------------------------

def reference_rows(streams: torch.Tensor, delays: tp.Sequence[int]) -> tp.List[tp.List[torch.Tensor]]:
    """Rows of the loss, built frame by frame: row b*T' + t' is (stream_k[b, :, t' + max(d) - d_k])_k."""
    batch, num_codebooks, _, num_frames = streams.shape
    aligned_frames = num_frames - max(delays)
    return [[streams[b, k, :, t + max(delays) - delays[k]].double() for k in range(num_codebooks)]
            for b in range(batch) for t in range(aligned_frames)]


def reference_standardize(rows: tp.List[tp.List[torch.Tensor]]) -> tp.List[tp.List[torch.Tensor]]:
    """Per-feature standardisation over the rows, one feature at a time."""
    n, num_codebooks, dim = len(rows), len(rows[0]), rows[0][0].numel()
    out = [[row[k].clone() for k in range(num_codebooks)] for row in rows]
    for k in range(num_codebooks):
        for f in range(dim):
            values = [float(row[k][f]) for row in rows]
            mean = sum(values) / n
            var = sum((v - mean) ** 2 for v in values) / n
            for i in range(n):
                out[i][k][f] = (values[i] - mean) / math.sqrt(var + STANDARDIZE_EPS)
    return out


def reference_mmd(rows: tp.List[tp.List[torch.Tensor]], perms: torch.Tensor, bandwidths: tp.Sequence[float],
                  exclude_shared: bool = False) -> float:
    """MMD² of the joint rows against rows whose codebook k is taken from row perms[k, i], by loops."""
    n, num_codebooks = len(rows), len(rows[0])
    x = [torch.cat(row) for row in rows]
    y = [torch.cat([rows[int(perms[k, i])][k] for k in range(num_codebooks)]) for i in range(n)]

    def kernel(u: torch.Tensor, v: torch.Tensor) -> float:
        dist = float(((u - v) ** 2).sum())
        return sum(math.exp(-dist / (2 * a)) for a in bandwidths)

    within_x = sum(kernel(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_y = sum(kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    cross_pairs = [(i, j) for i in range(n) for j in range(n)
                   if not (exclude_shared and any(int(perms[k, j]) == i for k in range(num_codebooks)))]
    cross = sum(kernel(x[i], y[j]) for i, j in cross_pairs) / len(cross_pairs)
    return within_x + within_y - 2 * cross


# ---------------------------------------------------------------------------------------------------
# Stream generators
# ---------------------------------------------------------------------------------------------------

def independent_streams(generator: torch.Generator, batch: int = B, frames: int = T_ALIGNED,
                        num_codebooks: int = K, dim: int = D) -> torch.Tensor:
    return torch.randn(batch, num_codebooks, dim, frames, generator=generator)


def dependent_streams(generator: torch.Generator) -> torch.Tensor:
    """Stream 1 is a noisy non-linear function of stream 0; streams 2 and 3 are independent."""
    streams = independent_streams(generator)
    weight = torch.randn(D, D, generator=generator) / math.sqrt(D)
    noise = torch.randn(B, D, T_ALIGNED, generator=generator)
    streams[:, 1] = torch.tanh(torch.einsum("ed,bdt->bet", weight, streams[:, 0])) + 0.5 * noise
    return streams


def shifted_streams(generator: torch.Generator, batch: int, frames: int, num_codebooks: int,
                    dim: int) -> torch.Tensor:
    """stream_k[t] = z[t + k] + small noise: stream k is the base white noise z advanced by k frames."""
    base = torch.randn(batch, dim, frames + num_codebooks - 1, generator=generator)
    streams = torch.stack([base[..., k:k + frames] for k in range(num_codebooks)], dim=1)
    return streams + 0.1 * torch.randn(streams.shape, generator=generator)


def independent_estimates(generator: torch.Generator, draws: int = NUM_INDEPENDENT_DRAWS,
                          **kwargs) -> torch.Tensor:
    shape = kwargs.pop("shape", (B, K, D, T_ALIGNED))
    return torch.stack([
        mmd_independence(torch.randn(shape, generator=generator), clamp=False, generator=generator,
                         **kwargs).estimate
        for _ in range(draws)])


# ---------------------------------------------------------------------------------------------------
# 1. Estimator against the brute-force reference
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("estimator", ["permutation", "permutation_debiased"])
@pytest.mark.parametrize("bandwidths,bandwidth_scale", [(DEFAULT_BANDWIDTHS, "dim"), (PAPER_BANDWIDTHS, "none")])
@pytest.mark.parametrize("standardize", ["none", "feature"])
def test_estimator_matches_brute_force(estimator, bandwidths, bandwidth_scale, standardize):
    batch, num_codebooks, dim, frames, delays = 3, 3, 2, 6, [0, 2, 1]
    streams = torch.randn(batch, num_codebooks, dim, frames, generator=torch.Generator().manual_seed(1),
                          dtype=torch.float64)
    streams[:, 1] += streams[:, 0] ** 2  # some dependence, so the value is not just the bias
    result = mmd_independence(streams, delays=delays, bandwidths=bandwidths, bandwidth_scale=bandwidth_scale,
                              estimator=estimator, standardize=standardize, clamp=False,
                              generator=torch.Generator().manual_seed(7))

    rows = reference_rows(streams, delays)
    n = len(rows)
    assert n == 12 and result.num_rows == n and result.dim == num_codebooks * dim
    if standardize == "feature":
        rows = reference_standardize(rows)
    perms = permutation_indices(n, num_codebooks, torch.Generator().manual_seed(7))
    scale = num_codebooks * dim if bandwidth_scale == "dim" else 1.0
    expected = reference_mmd(rows, perms, [a * scale for a in bandwidths],
                             exclude_shared=estimator == "permutation_debiased")
    assert result.estimate.dtype == torch.float64
    assert result.estimate.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_estimator_float32_close_to_reference():
    samples = torch.randn(10, 3, 4, generator=torch.Generator().manual_seed(3))
    bandwidths = torch.tensor([0.5, 3.0, 12.0])
    value = get_estimator("permutation")(samples, bandwidths, torch.Generator().manual_seed(5))
    perms = permutation_indices(10, 3, torch.Generator().manual_seed(5))
    rows = [[samples[i, k].double() for k in range(3)] for i in range(10)]
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference_mmd(rows, perms, [0.5, 3.0, 12.0]), abs=1e-5)


def reference_median_scale(rows: tp.List[tp.List[torch.Tensor]]) -> float:
    """Half the median squared distance over distinct pairs, by loops (the lower median, as torch's)."""
    flat = [torch.cat(row) for row in rows]
    distances = sorted(float((flat[i] - flat[j]).pow(2).sum()) for i, j in itertools.combinations(range(len(flat)), 2))
    return distances[(len(distances) - 1) // 2] / 2


@pytest.mark.parametrize("estimator", ["hsic", "permutation_debiased"])
def test_median_bandwidth_scale_matches_reference(estimator):
    streams = torch.randn(3, 3, 2, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    streams[:, 1] += streams[:, 0] ** 2
    delays = [0, 2, 1]
    options = dict(delays=delays, estimator=estimator, standardize="none", clamp=False)
    median = reference_median_scale(reference_rows(streams, delays))
    scaled = streams.clone().requires_grad_()
    absolute = streams.clone().requires_grad_()
    result = mmd_independence(scaled, bandwidth_scale="median", generator=torch.Generator().manual_seed(7), **options)
    expected = mmd_independence(absolute, bandwidth_scale="none", bandwidths=[a * median for a in DEFAULT_BANDWIDTHS],
                                generator=torch.Generator().manual_seed(7), **options)
    assert result.estimate.item() == pytest.approx(expected.estimate.item(), rel=1e-9)
    # The bandwidth is a constant of the loss: no gradient flows through the median.
    result.estimate.backward()
    expected.estimate.backward()
    torch.testing.assert_close(scaled.grad, absolute.grad)


def test_median_bandwidth_scale_is_scale_invariant_and_subsamples_large_inputs():
    streams = torch.randn(2, 4, 8, 700, generator=torch.Generator().manual_seed(0))  # N = 1400 > MEDIAN_MAX_ROWS
    streams[:, 2] += streams[:, 1]
    options = dict(bandwidth_scale="median", standardize="none", clamp=False)
    value = mmd_independence(streams, **options).estimate
    assert value > 0
    assert mmd_independence(10 * streams, **options).estimate.item() == pytest.approx(value.item(), rel=1e-4)
    # Identical rows (silence) keep a positive bandwidth and a finite value.
    assert torch.isfinite(mmd_independence(torch.zeros(2, 4, 8, 10), **options).estimate)


def test_product_of_marginals_permutes_each_codebook_independently():
    samples = torch.arange(6 * 3 * 2, dtype=torch.float32).reshape(6, 3, 2)
    perms = permutation_indices(6, 3, torch.Generator().manual_seed(0))
    permuted = product_of_marginals(samples, perms)
    assert permuted.shape == samples.shape
    for k in range(3):
        assert sorted(perms[k].tolist()) == list(range(6))
        for i in range(6):
            assert torch.equal(permuted[i, k], samples[perms[k, i], k])
    assert not all(torch.equal(perms[0], perms[k]) for k in range(1, 3))  # not one shared permutation


# ---------------------------------------------------------------------------------------------------
# 2. Detection power at the default config and batch
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("estimator", [None, "permutation"])  # None: the default
def test_default_config_detects_dependence(record_property, estimator):
    kwargs = {} if estimator is None else {"estimator": estimator}
    generator = torch.Generator().manual_seed(0)
    null = independent_estimates(generator, **kwargs)
    dependent = mmd_independence(dependent_streams(generator), clamp=False, generator=generator, **kwargs).estimate
    mean, std = null.mean().item(), null.std().item()
    z_score = (dependent.item() - mean) / std
    # Measured (seed 0), paper's "permutation": independent mean -7.12e-03, std 1.8e-05; dependent
    # -6.73e-03; z ≈ 21. The mean is negative: the estimator's O(K/N) bias, larger than this
    # dependence's signal, so with clamp=True this dependent batch would get a zero loss; hence the
    # debiased default (see the next test).
    for name, value in [("independent_mean", mean), ("independent_std", std),
                        ("dependent_estimate", dependent.item()), ("z_score", z_score)]:
        record_property(name, value)
    print(f"{estimator or 'default'}, N={B * T_ALIGNED}: independent {mean:.3e} ± {std:.2e}, "
          f"dependent {dependent.item():.3e}, z = {z_score:.1f}")
    assert z_score > 10


def test_debiased_estimator_is_centred_under_independence(record_property):
    generator = torch.Generator().manual_seed(1)
    biased = independent_estimates(generator, draws=10, estimator="permutation")
    debiased = independent_estimates(generator, draws=10, estimator="permutation_debiased")
    dependent = mmd_independence(dependent_streams(generator), estimator="permutation_debiased", clamp=False,
                                 generator=generator).estimate
    record_property("biased_mean", biased.mean().item())
    record_property("debiased_mean", debiased.mean().item())
    record_property("debiased_std", debiased.std().item())
    record_property("debiased_dependent", dependent.item())
    assert biased.mean() < -10 * biased.std()  # the paper's estimator: clearly negative
    assert debiased.mean().abs() < 3 * debiased.std() / math.sqrt(len(debiased))  # mean 0 up to noise
    assert dependent > 10 * debiased.std()  # dependent: positive, so the clamp leaves the loss active


def test_paper_bandwidths_are_nearly_flat_at_512_dims():
    # Why the default is dimension-scaled: at K·D = 512 standardised dimensions squared distances are
    # ≈ 1000, so the paper's absolute bandwidths give kernel values ≈ 0 between distinct rows.
    samples = standardize_features(dependent_streams(torch.Generator().manual_seed(2))
                                   .permute(0, 3, 1, 2).reshape(B * T_ALIGNED, K * D))
    dists = squared_distances(samples, samples)
    off_diagonal = ~torch.eye(len(samples), dtype=torch.bool)

    def mean_kernel(bandwidths):
        return sum(torch.exp(-dists / (2 * a)) for a in bandwidths)[off_diagonal].mean().item()

    assert dists[off_diagonal].mean().item() == pytest.approx(2 * K * D, rel=0.05)
    assert mean_kernel(PAPER_BANDWIDTHS) < 1e-3
    assert mean_kernel([a * K * D for a in DEFAULT_BANDWIDTHS]) > 0.5


# ---------------------------------------------------------------------------------------------------
# 3. Delay alignment
# ---------------------------------------------------------------------------------------------------

def test_align_streams_index_arithmetic():
    streams = torch.arange(2 * 3 * 1 * 6).reshape(2, 3, 1, 6)  # value encodes (b, k, t)
    aligned = align_streams(streams, [0, 2, 1])
    assert aligned.shape == (2, 3, 1, 4)  # T' = 6 - 2
    for b, k, t in itertools.product(range(2), range(3), range(4)):
        source_frame = t + 2 - [0, 2, 1][k]
        assert aligned[b, k, 0, t] == streams[b, k, 0, source_frame]
    # Codebook 0 (delay 0) is the latest frame of each tuple, codebook 1 (delay 2) the earliest.
    assert aligned[0, :, 0, 0].tolist() == [2, 6, 13]
    assert align_streams(streams, [0, 0, 0]) is streams  # parallel: identity


@settings(max_examples=30, deadline=None)
@given(delays=st.lists(st.integers(0, 4), min_size=2, max_size=4), extra=st.integers(1, 4))
def test_align_streams_matches_loop_reference(delays, extra):
    frames = max(delays) + extra
    streams = torch.arange(len(delays) * frames).reshape(1, len(delays), 1, frames)
    aligned = align_streams(streams, delays)
    expected = [[streams[0, k, 0, t + max(delays) - delays[k]].item() for k in range(len(delays))]
                for t in range(extra)]
    assert aligned[0, :, 0, :].t().tolist() == expected


def test_delay_alignment_finds_shifted_dependence(record_property):
    batch, frames, num_codebooks, dim = 4, 53, 4, 32
    generator = torch.Generator().manual_seed(3)
    streams = shifted_streams(generator, batch, frames, num_codebooks, dim)
    for delays in ([0, 1, 2, 3], [0, 0, 0, 0]):
        null = independent_estimates(generator, shape=(batch, num_codebooks, dim, frames), delays=delays)
        value = mmd_independence(streams, delays=delays, clamp=False, generator=generator).estimate
        z_score = ((value - null.mean()) / null.std()).item()
        record_property(f"z_delays_{''.join(map(str, delays))}", z_score)
        print(f"delays {delays}: independent {null.mean():.3e} ± {null.std():.2e}, shifted {value:.3e}, "
              f"z = {z_score:.1f}")
        if delays[-1]:
            assert z_score > 10  # aligned: every row holds the same z frame four times
        else:
            assert abs(z_score) < 4  # misaligned: rows hold independent frames


# ---------------------------------------------------------------------------------------------------
# 4. Gradients
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("standardize", ["feature", "codebook", "none"])
def test_gradients_flow(standardize):
    generator = torch.Generator().manual_seed(4)
    streams = independent_streams(generator, batch=2, frames=20, dim=8)
    # Codebook 1 (delay 1) at frame t pairs with codebook 0 (delay 0) at frame t + 1 after alignment.
    streams[:, 1, :, :-1] = streams[:, 0, :, 1:] + 0.3 * streams[:, 1, :, :-1]
    streams.requires_grad_(True)
    loss_fn = MMDIndependenceLoss(delays=[0, 1, 2, 3], standardize=standardize, estimator="permutation_debiased")
    loss = loss_fn(streams, generator=generator)
    assert loss > 0 and not loss_fn.last_result.clamped
    loss.backward()
    assert torch.isfinite(streams.grad).all()
    assert streams.grad.abs().sum() > 0
    assert streams.grad[:, 3, :, :3].abs().sum() > 0
    if standardize != "codebook":
        # Only aligned frames enter the loss: codebook 3 (delay 3) uses frames 0..16, not the last 3.
        # (Codebook statistics are taken before the crop, so there every frame gets gradient.)
        assert streams.grad[:, 3, :, -3:].abs().sum() == 0


def test_gradient_goes_through_standardisation_statistics():
    # Adding a constant to a whole feature leaves a per-feature-standardised loss unchanged, so the
    # gradient summed over the rows of each feature vanishes, only if the statistics carry gradient.
    streams = independent_streams(torch.Generator().manual_seed(5), batch=2, frames=15, dim=4).requires_grad_(True)
    mmd_independence(streams, clamp=False, generator=torch.Generator().manual_seed(0)).estimate.backward()
    assert streams.grad.abs().sum() > 0
    assert streams.grad.sum(dim=(0, 3)).abs().max() < 1e-6 * streams.grad.abs().sum()


@pytest.mark.parametrize("standardize", ["feature", "codebook"])
def test_silent_streams_are_finite(standardize):
    streams = torch.full((2, K, 8, 10), 0.25, requires_grad=True)
    result = mmd_independence(streams, standardize=standardize, clamp=False, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(result.estimate) and result.estimate.abs() < 1e-6
    result.estimate.backward()
    assert torch.isfinite(streams.grad).all()


# ---------------------------------------------------------------------------------------------------
# 5. Validation
# ---------------------------------------------------------------------------------------------------

GOOD = torch.zeros(2, 3, 2, 5)


@pytest.mark.parametrize("streams,kwargs,match", [
    (torch.zeros(2, 3, 5), {}, r"streams must be 4-D"),
    (torch.zeros(2, 1, 2, 5), {}, r"streams must have K >= 2"),
    (torch.zeros(2, 3, 2, 5, dtype=torch.long), {}, r"streams must be floating point"),
    (GOOD, {"delays": [0, 1]}, r"delays has 2 values .* K = 3"),
    (GOOD, {"delays": [0, -1, 2]}, r"delays must be non-negative"),
    (GOOD, {"delays": [0, 1.5, 2]}, r"delays must be non-negative ints"),
    (GOOD, {"delays": [0, 5, 2]}, r"T = 5 frames, not more than max\(delays\) = 5"),
    (torch.zeros(1, 3, 2, 3), {"delays": [0, 1, 2]}, r"streams give N = B·T' = 1·1 = 1 row"),
    (GOOD, {"estimator": "exact"}, r"estimator.*'exact'.*permutation"),
    (GOOD, {"standardize": "batch"}, r"standardize='batch'"),
    (GOOD, {"bandwidth_scale": "mean"}, r"bandwidth_scale='mean'"),
    (GOOD, {"bandwidths": []}, r"bandwidths must not be empty"),
    (GOOD, {"bandwidths": [1.0, 0.0]}, r"bandwidths must all be finite and > 0"),
    (GOOD, {"bandwidths": [1.0, -2.0]}, r"bandwidths must all be finite and > 0"),
    (GOOD, {"bandwidths": 1.0}, r"bandwidths must be a sequence"),
])
def test_functional_validation(streams, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mmd_independence(streams, **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"delays": [0, -1]}, r"delays must be non-negative"),
    ({"estimator": "exact"}, r"estimator.*'exact'"),
    ({"standardize": "batch"}, r"standardize='batch'"),
    ({"bandwidth_scale": "mean"}, r"bandwidth_scale='mean'"),
    ({"bandwidths": ()}, r"bandwidths must not be empty"),
    ({"bandwidths": [0.5, -1.0]}, r"bandwidths must all be finite and > 0"),
])
def test_module_validates_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MMDIndependenceLoss(**kwargs)


def test_module_delays_must_match_codebooks():
    loss_fn = MMDIndependenceLoss(delays=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"delays given at construction have 4 values .* K = 3"):
        loss_fn(torch.randn(2, 3, 2, 10))


def test_align_streams_validation():
    with pytest.raises(ValueError, match=r"delays has 2 values"):
        align_streams(GOOD, [0, 1])
    with pytest.raises(ValueError, match=r"max\(delays\)"):
        align_streams(GOOD, [0, 0, 7])


def test_estimator_registry():
    with pytest.raises(ValueError, match=r"Unknown estimator 'nope'; available estimators: .*'permutation'"):
        get_estimator("nope")
    with pytest.raises(ValueError, match=r"samples must have at least N = 2 rows"):
        get_estimator("permutation")(torch.zeros(1, 2, 3), torch.ones(1), None)
    with pytest.raises(ValueError, match=r"already registered"):
        register_estimator("permutation")(lambda samples, bandwidths, generator: samples.sum())
    assert get_estimator("permutation") is ESTIMATORS["permutation"]


# ---------------------------------------------------------------------------------------------------
# 6. Clamp
# ---------------------------------------------------------------------------------------------------

def test_clamp_semantics_with_negative_estimate(monkeypatch):
    def negative(samples, bandwidths, generator):
        return -1.0 - samples.pow(2).mean()
    monkeypatch.setitem(ESTIMATORS, "negative", negative)
    streams = torch.randn(2, 3, 4, 6, requires_grad=True)

    clamped = mmd_independence(streams, estimator="negative", clamp=True)
    assert isinstance(clamped, MMDIndependence)
    assert clamped.loss.item() == 0 and clamped.clamped is True
    assert clamped.estimate.item() < -1 and clamped.estimate.requires_grad
    clamped.loss.backward()
    assert streams.grad.abs().sum() == 0  # the clamp zeroes the gradient

    unclamped = mmd_independence(streams, estimator="negative", clamp=False)
    assert unclamped.loss is unclamped.estimate and unclamped.clamped is False


def test_clamp_on_the_real_estimator():
    # Independent streams: the paper's estimator's bias makes the estimate negative.
    loss_fn = MMDIndependenceLoss(estimator="permutation")
    loss = loss_fn(independent_streams(torch.Generator().manual_seed(6), batch=2, frames=25, dim=16),
                   generator=torch.Generator().manual_seed(0))
    result = loss_fn.last_result
    assert result.estimate < 0 and result.clamped and loss.item() == 0 and loss is result.loss
    assert result.num_rows == 50 and result.dim == K * 16
    # Even these dependent streams estimate below 0 at N = 400 (the bias wins), so the loss is 0.
    dependent = loss_fn(dependent_streams(torch.Generator().manual_seed(6)), generator=torch.Generator())
    assert dependent.item() == max(loss_fn.last_result.estimate.item(), 0.0) == 0.0


# ---------------------------------------------------------------------------------------------------
# 7. Determinism
# ---------------------------------------------------------------------------------------------------

def test_same_seed_same_value():
    streams = independent_streams(torch.Generator().manual_seed(7), batch=2, frames=20, dim=8)
    loss_fn = MMDIndependenceLoss(clamp=False, estimator="permutation_debiased")  # the default needs no RNG
    first = loss_fn(streams, generator=torch.Generator().manual_seed(11))
    second = loss_fn(streams, generator=torch.Generator().manual_seed(11))
    other = loss_fn(streams, generator=torch.Generator().manual_seed(12))
    assert torch.equal(first, second)
    assert first != other  # the value does depend on the permutations


# ---------------------------------------------------------------------------------------------------
# 8. Standardisation modes
# ---------------------------------------------------------------------------------------------------

def test_codebook_standardisation_differs_on_non_stationary_input():
    generator = torch.Generator().manual_seed(8)
    streams = independent_streams(generator, batch=2, frames=30, dim=8)
    # Feature scales spread over two orders of magnitude and a drifting mean over time.
    streams = streams * torch.logspace(-1, 1, 8).view(1, 1, 8, 1) + torch.linspace(0, 5, 30)
    kwargs = dict(delays=[0, 1, 2, 3], clamp=False)
    feature = mmd_independence(streams, standardize="feature", generator=torch.Generator().manual_seed(0), **kwargs)
    codebook = mmd_independence(streams, standardize="codebook", generator=torch.Generator().manual_seed(0), **kwargs)
    none = mmd_independence(streams, standardize="none", generator=torch.Generator().manual_seed(0), **kwargs)
    assert torch.isfinite(codebook.estimate)
    assert not torch.isclose(feature.estimate, codebook.estimate, rtol=1e-3)
    assert not torch.isclose(codebook.estimate, none.estimate, rtol=1e-3)


def test_standardisation_statistics():
    streams = 3 + 2 * torch.randn(4, 3, 5, 7, generator=torch.Generator().manual_seed(9))
    standardized = standardize_codebooks(streams)
    var, mean = torch.var_mean(standardized, dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros(3), atol=1e-5) and torch.allclose(var, torch.ones(3), atol=1e-4)
    # Codebook mode standardises before alignment: the scale of the result does not depend on it.
    a = mmd_independence(streams, standardize="codebook", clamp=False, generator=torch.Generator().manual_seed(0))
    b = mmd_independence(10 * streams - 4, standardize="codebook", clamp=False,
                         generator=torch.Generator().manual_seed(0))
    assert a.estimate.item() == pytest.approx(b.estimate.item(), abs=1e-5)  # float32 cancellation near 0


def test_half_precision_input_is_computed_in_float32():
    streams = independent_streams(torch.Generator().manual_seed(10), batch=2, frames=10, dim=8)
    half = mmd_independence(streams.half(), clamp=False, generator=torch.Generator().manual_seed(0))
    full = mmd_independence(streams.half().float(), clamp=False, generator=torch.Generator().manual_seed(0))
    assert half.estimate.dtype == torch.float32
    assert half.estimate.item() == pytest.approx(full.estimate.item(), rel=1e-6)
