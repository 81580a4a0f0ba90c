"""Tests of the exact blocked HSIC estimator and the random-feature one (audiocraft_mmd.losses.hsic, .rff).

CPU only, seconds. Speed and memory targets are measured by ``python -m audiocraft_mmd.benchmarks.estimators``,
not asserted here.
"""

import math
import typing as tp

import pytest
import torch

from audiocraft_mmd.losses import ESTIMATORS, MMDIndependenceLoss, get_estimator, mmd_independence
from audiocraft_mmd.losses.hsic import hsic_mmd, kernel_schedule
from audiocraft_mmd.losses.mmd import standardize_features
from audiocraft_mmd.losses.rff import _chunk_statistic, rff_mmd

from common_utils import brute_force_hsic


# ---------------------------------------------------------------------------------------------------
# Brute-force references (float64, the whole N x N matrices, autograd)
# ---------------------------------------------------------------------------------------------------

def brute_force_population_gap(samples: torch.Tensor, bandwidths: tp.Sequence[float]) -> torch.Tensor:
    """The plug-in MMD² between the rows and ALL K-tuples of their blocks (the exact product of the
    empirical marginals), by enumeration: a V-statistic, used only as a sanity anchor."""
    n, num_codebooks, _ = samples.shape
    grid = torch.cartesian_prod(*[torch.arange(n)] * num_codebooks)           # [N^K, K]
    product_rows = samples[grid, torch.arange(num_codebooks)].flatten(1)       # [N^K, K*D]
    joint_rows = samples.flatten(1)

    def mean_kernel(x, y):
        d = torch.cdist(x, y).pow(2)
        return sum(torch.exp(-d / (2 * a)) for a in bandwidths).mean()

    return mean_kernel(joint_rows, joint_rows) - 2 * mean_kernel(joint_rows, product_rows) + \
        mean_kernel(product_rows, product_rows)


def dependent_samples(generator: torch.Generator, n: int, num_codebooks: int = 4, dim: int = 8,
                      dtype=torch.float32) -> torch.Tensor:
    samples = torch.randn(n, num_codebooks, dim, generator=generator, dtype=dtype)
    samples[:, 1] = torch.tanh(2 * samples[:, 0]) + 0.3 * samples[:, 1]
    return samples


BANDWIDTHS = [0.5, 1.0, 2.0, 3.0, 12.0]  # 0.5, 1, 2 share one exp (squarings); 3 and 12 too


# ---------------------------------------------------------------------------------------------------
# 1. Exact estimator against brute force
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("block_size", [1, 4, 5, 13, 1000])
def test_hsic_matches_brute_force_values_and_gradients(block_size):
    samples = dependent_samples(torch.Generator().manual_seed(0), 13, num_codebooks=3, dim=4,
                                dtype=torch.float64).requires_grad_(True)
    bandwidths = torch.tensor(BANDWIDTHS, dtype=torch.float64, requires_grad=True)
    value = hsic_mmd(samples, bandwidths, block_size=block_size)
    grads = torch.autograd.grad(value, [samples, bandwidths])
    expected = brute_force_hsic(samples, bandwidths)
    expected_grads = torch.autograd.grad(expected, [samples, bandwidths])
    assert expected.item() > 1e-3  # dependent: a value well away from 0
    assert value.item() == pytest.approx(expected.item(), rel=1e-10)
    for got, want in zip(grads, expected_grads):
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-14)


def test_hsic_gradcheck():
    samples = dependent_samples(torch.Generator().manual_seed(1), 7, num_codebooks=2, dim=3,
                                dtype=torch.float64).requires_grad_(True)
    bandwidths = torch.tensor([1.0, 4.0, 6.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, a: hsic_mmd(x, a, block_size=3), (samples, bandwidths))


def test_hsic_float32_close_to_float64():
    samples = dependent_samples(torch.Generator().manual_seed(2), 300)
    bandwidths = torch.tensor([8.0, 16.0, 32.0])
    single = hsic_mmd(samples, bandwidths, block_size=64)
    double = hsic_mmd(samples.double(), bandwidths.double(), block_size=64)
    assert single.dtype == torch.float32
    assert single.item() == pytest.approx(double.item(), rel=1e-4)


def test_hsic_is_a_consistent_mmd_estimate():
    # The U-statistic and the V-statistic against the exact product of the empirical marginals
    # (all N^K K-tuples) estimate the same quantity: close at a moderate N.
    samples = dependent_samples(torch.Generator().manual_seed(3), 40, num_codebooks=2, dim=2, dtype=torch.float64)
    exact = hsic_mmd(samples, torch.tensor([1.0, 2.0], dtype=torch.float64)).item()
    plug_in = brute_force_population_gap(samples, [1.0, 2.0]).item()
    assert exact > 0.05 and exact == pytest.approx(plug_in, rel=0.15)


@pytest.mark.parametrize("standardize", ["feature", "codebook", "none"])
def test_hsic_through_the_loss_matches_brute_force(standardize):
    # Delays, standardisation and dimension-scaled bandwidths, end to end, values and gradients.
    generator = torch.Generator().manual_seed(4)
    streams = torch.randn(3, 3, 2, 8, generator=generator, dtype=torch.float64)
    streams[:, 1, :, :-1] += streams[:, 0, :, 1:] ** 2  # dependence along the delay of codebook 1
    streams.requires_grad_(True)
    delays = [0, 1, 2]
    result = mmd_independence(streams, delays=delays, estimator="hsic", standardize=standardize, clamp=False)
    grad = torch.autograd.grad(result.estimate, streams)[0]

    from audiocraft_mmd.losses.mmd import STANDARDIZATIONS, align_streams, DEFAULT_BANDWIDTHS
    mode = STANDARDIZATIONS[standardize]
    aligned = align_streams(mode.before_alignment(streams), delays)
    rows = mode.after_merge(aligned.permute(0, 3, 1, 2).reshape(-1, 3, 2))
    expected = brute_force_hsic(rows, [a * 6 for a in DEFAULT_BANDWIDTHS])
    expected_grad = torch.autograd.grad(expected, streams)[0]
    assert result.num_rows == 18
    assert result.estimate.item() == pytest.approx(expected.item(), rel=1e-9, abs=1e-13)
    assert torch.allclose(grad, expected_grad, rtol=1e-8, atol=1e-13)


# ---------------------------------------------------------------------------------------------------
# 2. Blocks
# ---------------------------------------------------------------------------------------------------

def test_blocked_equals_unblocked_float32():
    samples = dependent_samples(torch.Generator().manual_seed(5), 203).requires_grad_(True)  # 203 = 7 * 29
    bandwidths = torch.tensor([4.0, 8.0, 16.0, 5.0])
    reference = hsic_mmd(samples, bandwidths, block_size=203)
    reference_grad, = torch.autograd.grad(reference, samples)
    for block_size in (1, 16, 50, 64, 202, 500):
        value = hsic_mmd(samples, bandwidths, block_size=block_size)
        grad, = torch.autograd.grad(value, samples)
        assert value.item() == pytest.approx(reference.item(), rel=1e-5, abs=1e-8), block_size
        assert torch.allclose(grad, reference_grad, rtol=1e-4, atol=1e-9), block_size


def test_kernel_schedule_reuses_exp_by_squaring():
    schedule = kernel_schedule([0.1, 1.0, 5.0, 10.0, 20.0, 50.0])
    assert [index for index, _, _ in schedule] == [5, 4, 3, 2, 1, 0]  # largest first
    derived = {index: (source, squarings) for index, source, squarings in schedule if source is not None}
    assert derived == {3: (4, 1), 2: (3, 1)}  # 10 = 20 / 2, 5 = 10 / 2; 50, 1 and 0.1 need an exp
    dim_scaled = kernel_schedule([0.25 * 512, 0.5 * 512, 512.0, 2 * 512.0, 4 * 512.0])
    assert sum(source is None for _, source, _ in dim_scaled) == 1


# ---------------------------------------------------------------------------------------------------
# 3. Bias and power
# ---------------------------------------------------------------------------------------------------

def test_hsic_unbiased_under_independence_and_detects_dependence(record_property):
    generator = torch.Generator().manual_seed(6)
    bandwidths = torch.tensor([0.25, 0.5, 1.0, 2.0, 4.0]) * 4 * 16
    null = torch.stack([hsic_mmd(standardize_features(torch.randn(300, 4, 16, generator=generator)), bandwidths)
                        for _ in range(60)])
    standard_error = null.std() / math.sqrt(len(null))
    dependent = hsic_mmd(standardize_features(dependent_samples(generator, 300, dim=16)), bandwidths)
    record_property("null_mean", null.mean().item())
    record_property("null_std", null.std().item())
    record_property("dependent", dependent.item())
    assert null.mean().abs() < 4 * standard_error  # mean 0 up to noise (4 SE: a 6e-5 false alarm rate)
    assert dependent > 20 * null.std()
    # The paper's permutation estimator on the same kind of data: clearly negative (its O(K/N) bias).
    permutation = torch.stack([get_estimator("permutation")(standardize_features(torch.randn(300, 4, 16,
                               generator=generator)), bandwidths, generator) for _ in range(10)])
    assert permutation.mean() < -10 * permutation.std() / math.sqrt(10)


def test_hsic_is_deterministic():
    samples = dependent_samples(torch.Generator().manual_seed(7), 50)
    bandwidths = torch.tensor([2.0, 8.0])
    first = hsic_mmd(samples, bandwidths, torch.Generator().manual_seed(0))
    second = hsic_mmd(samples, bandwidths, torch.Generator().manual_seed(1))
    assert torch.equal(first, second)


# ---------------------------------------------------------------------------------------------------
# 4. Random Fourier features
# ---------------------------------------------------------------------------------------------------

def brute_force_rff(samples: torch.Tensor, base: torch.Tensor, bandwidths: tp.Sequence[float]) -> torch.Tensor:
    """Σ over bandwidths and frequencies of the HSIC U-statistic with the complex per-codebook kernels
    exp(i ω_k·(u - v)), from the full N x N matrices (complex128)."""
    n, num_codebooks, _ = samples.shape
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    total = 0.0
    for a in bandwidths:
        for r in range(base.shape[-1]):
            phases = torch.stack([samples[:, k] @ base[k, :, r] for k in range(num_codebooks)], 1) / math.sqrt(a)
            kernels = torch.exp(1j * (phases[:, None] - phases[None])) * off_diagonal[..., None]  # [N, N, K]
            joint = kernels.prod(-1).sum() / (n * (n - 1))
            cross = (kernels.sum(1) / (n - 1)).prod(-1).mean()
            product = (kernels.sum((0, 1)) / (n * (n - 1))).prod()
            total += (joint - 2 * cross + product).real.item()
    return torch.tensor(total, dtype=torch.float64)


def test_rff_chunk_matches_brute_force():
    generator = torch.Generator().manual_seed(8)
    samples = dependent_samples(generator, 11, num_codebooks=3, dim=4, dtype=torch.float64)
    base = torch.randn(3, 4, 5, generator=generator, dtype=torch.float64)
    bandwidths = [0.5, 2.0]
    value = _chunk_statistic(samples, base, torch.tensor(bandwidths, dtype=torch.float64).rsqrt())
    assert value.item() == pytest.approx(brute_force_rff(samples, base, bandwidths).item(), rel=1e-9, abs=1e-12)


def test_rff_error_shrinks_with_features(record_property):
    generator = torch.Generator().manual_seed(9)
    samples = standardize_features(dependent_samples(generator, 200, dim=16, dtype=torch.float64))
    bandwidths = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64) * 64
    exact = hsic_mmd(samples, bandwidths).item()
    errors = {}
    for features in (32, 512):
        draws = torch.stack([rff_mmd(samples, bandwidths, generator, num_features=features) for _ in range(20)])
        errors[features] = (draws - exact).pow(2).mean().sqrt().item()
        record_property(f"rms_error_{features}", errors[features])
        # Unbiased for the exact value given the rows: the mean error is within noise.
        assert abs(draws.mean().item() - exact) < 4 * draws.std().item() / math.sqrt(len(draws))
    assert errors[512] < errors[32] / 2.5  # 1 / sqrt(R): a factor of 4 expected
    assert errors[512] < 0.3 * exact


def test_rff_chunks_and_checkpointing_do_not_change_the_value():
    samples = dependent_samples(torch.Generator().manual_seed(10), 60, dtype=torch.float64).requires_grad_(True)
    bandwidths = torch.tensor([4.0, 16.0], dtype=torch.float64)
    values, grads = [], []
    for chunk_size in (7, 100):
        value = rff_mmd(samples, bandwidths, torch.Generator().manual_seed(3), num_features=30, chunk_size=chunk_size)
        values.append(value.item())
        grads.append(torch.autograd.grad(value, samples)[0])
    no_grad = rff_mmd(samples.detach(), bandwidths, torch.Generator().manual_seed(3), num_features=30)
    assert values[0] == pytest.approx(values[1], rel=1e-12) == pytest.approx(no_grad.item(), rel=1e-12)
    assert torch.allclose(grads[0], grads[1], rtol=1e-10, atol=1e-15)


def test_rff_gradcheck():
    samples = dependent_samples(torch.Generator().manual_seed(11), 9, num_codebooks=2, dim=3,
                                dtype=torch.float64).requires_grad_(True)
    bandwidths = torch.tensor([1.0, 3.0], dtype=torch.float64)
    fn = lambda x: rff_mmd(x, bandwidths, torch.Generator().manual_seed(0), num_features=6, chunk_size=4)  # noqa
    assert torch.autograd.gradcheck(fn, (samples,))


# ---------------------------------------------------------------------------------------------------
# 5. Registry, loss and config selection; bad inputs
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["hsic", "rff", "rff_256", "rff_4096"])
def test_estimators_are_registered_and_run_through_the_loss(name):
    assert name in ESTIMATORS
    streams = torch.randn(2, 4, 8, 12, generator=torch.Generator().manual_seed(12), requires_grad=True)
    loss_fn = MMDIndependenceLoss(delays=[0, 1, 2, 3], estimator=name, clamp=False)
    loss = loss_fn(streams, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(streams.grad).all() and streams.grad.abs().sum() > 0


def test_config_selects_the_estimator():
    from audiocraft_mmd import train
    for name in ("hsic", "rff"):
        cfg = train.main.get_xp(["solver=compression/mmd", f"mmd.estimator={name}"]).cfg
        assert cfg.mmd.estimator == name
        MMDIndependenceLoss(estimator=cfg.mmd.estimator)  # the solver builds exactly this


@pytest.mark.parametrize("call,match", [
    (lambda x, a: hsic_mmd(x, a, block_size=0), r"block_size must be a positive int, got 0"),
    (lambda x, a: hsic_mmd(x, a, block_size=-3), r"block_size must be a positive int, got -3"),
    (lambda x, a: hsic_mmd(x, a, block_size=2.5), r"block_size must be a positive int, got 2.5"),
    (lambda x, a: hsic_mmd(x, -a), r"bandwidths must be > 0"),
    (lambda x, a: hsic_mmd(x[:1], a), r"at least N = 2 rows"),
    (lambda x, a: hsic_mmd(x[0], a), r"samples must be \[N, K, D\]"),
    (lambda x, a: hsic_mmd(x, a[:0]), r"bandwidths must be a non-empty 1-D tensor"),
    (lambda x, a: rff_mmd(x, a, num_features=0), r"num_features must be a positive int, got 0"),
    (lambda x, a: rff_mmd(x, a, chunk_size=-1), r"chunk_size must be a positive int, got -1"),
    (lambda x, a: rff_mmd(x[:1], a), r"at least N = 2 rows"),
])
def test_bad_inputs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.randn(5, 2, 3), torch.tensor([1.0, 2.0]))
