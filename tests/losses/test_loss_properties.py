"""Property-based tests: the loss stays finite, with a bounded gradient, over random shapes, scales,
delays, bandwidths and precisions, for every registered estimator (autocast does not change it);
the dependence metrics stay finite and in range over random codes, collapsed codebooks included."""

import math

from hypothesis import assume, given, settings, strategies as st
import pytest
import torch

from audiocraft_mmd.losses import ESTIMATORS, mmd_independence
from audiocraft_mmd.losses.mmd import STANDARDIZATIONS, STANDARDIZE_EPS
from audiocraft_mmd.metrics.dependence import dependence_report
from audiocraft_mmd.metrics.information import ENTROPY_ESTIMATORS


@st.composite
def loss_inputs(draw):
    num_codebooks = draw(st.integers(2, 4))
    delays = draw(st.lists(st.integers(0, 3), min_size=num_codebooks, max_size=num_codebooks))
    batch, dim = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    # At least K + 1 rows after alignment, as the solver requires (the debiased estimator needs them).
    frames = max(delays) + max(draw(st.integers(2, 8)), -(-(num_codebooks + 1) // batch))
    scale = 10.0 ** draw(st.integers(-6, 6))
    streams = torch.randn(batch, num_codebooks, dim, frames,
                          generator=torch.Generator().manual_seed(draw(st.integers(0, 999))))
    constant = draw(st.lists(st.booleans(), min_size=num_codebooks, max_size=num_codebooks))
    for k, is_constant in enumerate(constant):
        if is_constant:  # silence: a codebook stuck on one vector
            streams[:, k] = streams[0, k, :, :1]
    bandwidths = [10.0 ** draw(st.integers(-6, 6)) for _ in range(draw(st.integers(1, 3)))]
    return dict(streams=streams * scale, scale=scale, constant=constant, delays=delays, bandwidths=bandwidths,
                estimator=draw(st.sampled_from(sorted(ESTIMATORS))),
                standardize=draw(st.sampled_from(sorted(STANDARDIZATIONS))),
                dtype=draw(st.sampled_from([torch.float32, torch.float16, torch.bfloat16])))


@settings(max_examples=300, deadline=None)
@given(inputs=loss_inputs())
def test_loss_and_gradient_stay_finite_and_bounded(inputs):
    streams = inputs["streams"].to(inputs["dtype"])
    # 1e6-scaled values overflow float16 on their own: discarded as examples, so Hypothesis fails the
    # test if it cannot find enough others (an early return would pass on none).
    assume(bool(torch.isfinite(streams).all()))
    streams.requires_grad_(True)
    result = mmd_independence(streams, delays=inputs["delays"], bandwidths=inputs["bandwidths"],
                              estimator=inputs["estimator"], standardize=inputs["standardize"], clamp=False,
                              generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(result.estimate)
    # A sum of kernels bounded by 1 per bandwidth: |MMD²| <= 4 per bandwidth.
    assert abs(result.estimate.item()) <= 4 * len(inputs["bandwidths"]) + 1e-3
    (grad,) = torch.autograd.grad(result.estimate, streams)
    assert torch.isfinite(grad).all()
    # Standardisation divides codebook k by sqrt(var_k + eps): the loss is scale-invariant, and its
    # gradient scales as 1 / max(scale, sqrt(eps)) for a varying codebook, 1 / sqrt(eps) for a
    # constant one. A Gaussian kernel's slope is at most 1 / sqrt(e·a) for bandwidth a (reached by
    # the random-feature estimator, whose features oscillate at that frequency). Measured products
    # stay below 15; the bound leaves room.
    if inputs["standardize"] != "none":
        narrowest = min(inputs["bandwidths"]) * streams.shape[1] * streams.shape[2]  # bandwidth_scale="dim"
        units = torch.tensor([math.sqrt(STANDARDIZE_EPS) if is_constant
                              else max(inputs["scale"], math.sqrt(STANDARDIZE_EPS))
                              for is_constant in inputs["constant"]])
        scaled = grad.float() * units.view(1, -1, 1, 1)
        assert scaled.norm().item() * math.sqrt(min(1.0, narrowest)) < 100


def test_too_few_rows_for_the_debiased_estimator_is_a_clear_error():
    streams = torch.randn(1, 3, 2, 3)
    with pytest.raises(ValueError, match="more rows than codebooks, got N = 3 rows for K = 3"):
        mmd_independence(streams, estimator="permutation_debiased")


def test_autocast_does_not_change_the_loss():
    generator = torch.Generator().manual_seed(0)
    streams = torch.randn(8, 4, 128, 50, generator=generator)
    streams[:, 1] = streams[:, 0] + 0.5 * streams[:, 1]
    reference = mmd_independence(streams, clamp=False, generator=torch.Generator().manual_seed(1)).estimate
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = mmd_independence(streams, clamp=False, generator=torch.Generator().manual_seed(1)).estimate
    assert autocast.dtype == torch.float32
    assert autocast.item() == reference.item()


@st.composite
def code_inputs(draw):
    num_codebooks, bins = draw(st.integers(2, 4)), draw(st.integers(1, 64))
    delays = draw(st.lists(st.integers(0, 3), min_size=num_codebooks, max_size=num_codebooks))
    ci_blocks = draw(st.sampled_from([0, 2, 3]))  # the jackknife needs 2 aligned frames per block
    batch, frames = draw(st.integers(1, 4)), max(delays) + max(draw(st.integers(2, 40)), 2 * ci_blocks)
    generator = torch.Generator().manual_seed(draw(st.integers(0, 999)))
    used = [draw(st.integers(1, bins)) for _ in range(num_codebooks)]  # 1: a collapsed codebook
    codes = torch.stack([torch.randint(0, n, (batch, frames), generator=generator) for n in used], dim=1)
    if draw(st.booleans()):
        codes[:, 1] = codes[:, 0] % used[1]  # a deterministic function of codebook 0
    return dict(codes=codes, bins=bins, delays=delays, entropy=draw(st.sampled_from(sorted(ENTROPY_ESTIMATORS))),
                shifts=draw(st.integers(0, 3)), ci_blocks=ci_blocks)


@settings(max_examples=100, deadline=None)
@given(inputs=code_inputs())
def test_dependence_metrics_stay_finite_and_in_range(inputs):
    report = dependence_report(inputs["codes"], inputs["bins"], {"given": inputs["delays"]},
                               entropy_estimator=inputs["entropy"], shifts=inputs["shifts"],
                               ci_blocks=inputs["ci_blocks"])
    usage = report.usage
    for k in range(inputs["codes"].shape[1]):
        assert -1e-9 <= usage.entropy[k] <= usage.max_entropy + 1e-9
        assert 0 < usage.usage[k] <= 1 and 0 <= usage.dead[k] < inputs["bins"]
    for pair in report.alignments["given"].pairs:
        values = [pair.mi, pair.mi_shift, pair.mi_plugin, pair.null_mean, pair.null_std, pair.normalized]
        assert all(math.isfinite(value) for value in values), pair
        if min(pair.entropy_i, pair.entropy_j) == 0:  # a collapsed codebook carries no information
            assert pair.normalized == 0.0
        if inputs["ci_blocks"]:  # asked for: an interval around the estimate
            assert pair.ci_low is not None and pair.ci_high is not None, pair
            assert math.isfinite(pair.ci_low) and pair.ci_low <= pair.mi <= pair.ci_high
        else:
            assert pair.ci_low is None and pair.ci_high is None
