"""Dependence metrics on codes with known dependence (audiocraft_mmd.metrics), at realistic sparsity.

Laws: a Zipf-like marginal P over 2048 entries, and the "copy mixture": C_j = C_i with probability
p, else an independent draw from P. Its mutual information is analytic (:func:`mixture_mi`).
"""

import itertools
import math
import time

import pytest
import torch

from audiocraft_mmd.losses.mmd import DEFAULT_ESTIMATOR
from audiocraft_mmd.metrics import (align_codes, codebook_usage, dependence_report, kernel_independence_test,
                                    pairwise_mutual_information, standard_alignments)

BINS = 2048
CLIPS, CLIP_FRAMES = 20, 5000  # 1e5 frames: 0.02 frame per joint cell


def zipf(bins: int, exponent: float, offset: float) -> torch.Tensor:
    probs = 1.0 / (torch.arange(bins, dtype=torch.float64) + offset) ** exponent
    return probs / probs.sum()


def entropy_bits(probs: torch.Tensor) -> float:
    probs = probs[probs > 0]
    return float(-(probs * torch.log2(probs)).sum())


def mixture_mi(probs: torch.Tensor, p: float) -> float:
    """I(X; Y) in bits for X ~ P, Y = X with probability p, else Y ~ P independently.

    P(x, x) = p P(x) + (1 - p) P(x)², P(x, y≠x) = (1 - p) P(x) P(y), marginals P.
    """
    diagonal = p * probs + (1 - p) * probs ** 2
    mi = float((diagonal * torch.log2(p / probs + 1 - p)).sum())
    if p < 1:
        mi += (1 - p) * (1 - float((probs ** 2).sum())) * math.log2(1 - p)
    return mi


def draw(probs: torch.Tensor, shape, generator, stay: float = 0.0) -> torch.Tensor:
    """Codes of shape ``[..., T]`` drawn from ``probs``; each frame repeats the previous one with
    probability ``stay`` (time-correlated, like codes of stationary audio)."""
    shape = torch.Size(shape)
    fresh = torch.multinomial(probs, shape.numel(), replacement=True, generator=generator).reshape(shape)
    new = torch.rand(shape, generator=generator) >= stay
    new[..., 0] = True
    last = torch.cummax(torch.arange(shape[-1]).expand(shape) * new, dim=-1).values
    return torch.gather(fresh, -1, last)


def copy_mixture(probs, p, generator):
    """``[CLIPS, 2, CLIP_FRAMES]``: codebook 1 copies codebook 0 with probability p."""
    x = draw(probs, (CLIPS, CLIP_FRAMES), generator)
    y = draw(probs, (CLIPS, CLIP_FRAMES), generator)
    y = torch.where(torch.rand(CLIPS, CLIP_FRAMES, generator=generator) < p, x, y)
    return torch.stack([x, y], dim=1)


def test_mixture_mi_matches_a_direct_sum():
    probs = zipf(7, 1.0, 1.0)
    p = 0.3
    joint = (1 - p) * probs[:, None] * probs[None, :] + p * torch.diag(probs)
    direct = float((joint * torch.log2(joint / (probs[:, None] * probs[None, :]))).sum())
    assert mixture_mi(probs, p) == pytest.approx(direct, rel=1e-9)


def test_independent_streams_read_zero_within_interval():
    generator = torch.Generator().manual_seed(0)
    codes = draw(zipf(BINS, 1.0, 10.0), (CLIPS, 3, CLIP_FRAMES), generator, stay=0.5)
    report = dependence_report(codes, BINS, standard_alignments(3), ci_blocks=20)
    assert set(report.alignments) == {"parallel", "delay"}
    for alignment in report.alignments.values():
        assert alignment.frames >= 99_000 and len(alignment.pairs) == 3
        for pair in alignment.pairs:
            assert pair.regime == "undersampled"  # 1e5 frames, about 2^19 effective cells
            assert pair.null_mean > 1.0  # the plug-in bias being corrected is large
            assert pair.ci_low <= 0.0 <= pair.ci_high, pair
            assert abs(pair.mi) < 0.03 and abs(pair.normalized) < 0.005, pair
            assert pair.ci_high - pair.ci_low < 0.1


def test_copy_reads_its_entropy():
    generator = torch.Generator().manual_seed(1)
    x = draw(zipf(BINS, 1.0, 10.0), (CLIPS, CLIP_FRAMES), generator)
    codes = torch.stack([x, x], dim=1)
    (pair,) = pairwise_mutual_information(codes, BINS, shifts=3).pairs
    entropy = codebook_usage(codes, BINS).entropy[0]
    assert entropy > 9.0
    assert pair.mi == pytest.approx(entropy, rel=0.02)
    assert pair.normalized == pytest.approx(1.0, abs=0.02)
    assert pair.mi_shift < 0.9 * entropy  # the plain shifted-null correction is conservative here


def test_delayed_copy_is_seen_only_under_the_matching_alignment():
    generator = torch.Generator().manual_seed(2)
    x = draw(zipf(BINS, 1.0, 10.0), (CLIPS, CLIP_FRAMES + 1), generator)
    # Codebook 1 at frame t holds codebook 0's frame t + 1: what the delay pattern puts side by side.
    codes = torch.stack([x[:, :-1], x[:, 1:]], dim=1)
    report = dependence_report(codes, BINS, standard_alignments(2), ci_blocks=20)
    (delayed,) = report.alignments["delay"].pairs
    (parallel,) = report.alignments["parallel"].pairs
    assert delayed.normalized == pytest.approx(1.0, abs=0.02)
    assert parallel.ci_low <= 0.0 <= parallel.ci_high and abs(parallel.mi) < 0.03
    aligned = align_codes(codes, [0, 1])
    assert torch.equal(aligned[:, 0], aligned[:, 1])


@pytest.mark.parametrize("exponent, offset, p, regime", [
    (1.0, 10.0, 0.05, "undersampled"),   # H = 9.5 bits, 0.18 frame per effective cell, MI = 0.21 bit
    (1.0, 10.0, 0.15, "undersampled"),   # MI = 0.84 bit
    (1.15, 2.0, 0.1, "sparse"),          # H = 7.7 bits, 2.4 frames per effective cell, MI = 0.36 bit
    (1.3, 1.0, 0.15, "sampled"),         # H = 5.7 bits, 40 frames per effective cell, MI = 0.41 bit
])
def test_known_mutual_information_is_recovered_within_10_percent(exponent, offset, p, regime):
    probs = zipf(BINS, exponent, offset)
    true_mi = mixture_mi(probs, p)
    assert 0.05 < true_mi < 1.0
    codes = copy_mixture(probs, p, torch.Generator().manual_seed(3))
    (pair,) = pairwise_mutual_information(codes, BINS, shifts=3, ci_blocks=20).pairs
    assert pair.regime == regime
    assert pair.mi == pytest.approx(true_mi, rel=0.10), (pair, true_mi)
    assert pair.ci_low < true_mi < pair.ci_high
    if regime == "sampled":
        assert pair.mi_shift == pytest.approx(true_mi, rel=0.10)
    else:  # documented: the unscaled correction under-reads sparse dependent laws
        assert pair.mi_shift < 0.92 * true_mi


def test_total_correlation_is_refused_when_saturated_and_measured_when_sampled():
    generator = torch.Generator().manual_seed(4)
    sparse = draw(zipf(BINS, 1.0, 10.0), (10, 4, 1000), generator)
    saturated = pairwise_mutual_information(sparse, BINS).total_correlation
    assert not saturated.estimable and saturated.value is None and "saturated" in saturated.reason

    probs = zipf(4, 1.0, 1.0)
    x = draw(probs, (10, 2000), generator)
    codes = torch.stack([x, draw(probs, (10, 2000), generator), x], dim=1)  # C_2 copies C_0
    sampled = pairwise_mutual_information(codes, 4).total_correlation
    assert sampled.estimable
    assert sampled.value == pytest.approx(entropy_bits(probs), abs=0.05)


def reference_plugin_mi(codes, bins, delays):
    """Slow, loop-based plug-in MI (bits) of every pair after the delay alignment."""
    batch, num_codebooks, frames = codes.shape
    shift = max(delays)
    rows = [[int(codes[b, k, t + shift - delays[k]]) for k in range(num_codebooks)]
            for b in range(batch) for t in range(frames - shift)]
    n = len(rows)

    def entropy(items):
        counts = {}
        for item in items:
            counts[item] = counts.get(item, 0) + 1
        return -sum(c / n * math.log2(c / n) for c in counts.values())

    return {(i, j): entropy([r[i] for r in rows]) + entropy([r[j] for r in rows])
            - entropy([(r[i], r[j]) for r in rows])
            for i, j in itertools.combinations(range(num_codebooks), 2)}


@pytest.mark.parametrize("delays", [[0, 0, 0], [0, 1, 2], [2, 0, 1]])
def test_vectorised_mi_matches_a_loop_reference(delays):
    generator = torch.Generator().manual_seed(5)
    codes = torch.randint(0, 5, (2, 3, 40), generator=generator)
    codes[:, 2] = (codes[:, 0] + (torch.rand(2, 40, generator=generator) < 0.3)) % 5
    expected = reference_plugin_mi(codes, 5, delays)
    result = pairwise_mutual_information(codes, 5, delays, entropy_estimator="plugin", shifts=0)
    assert [(pair.i, pair.j) for pair in result.pairs] == [(0, 1), (0, 2), (1, 2)]
    for pair in result.pairs:
        assert pair.mi_plugin == pytest.approx(expected[(pair.i, pair.j)], abs=1e-9)
        assert pair.mi == pytest.approx(pair.mi_plugin)  # no shifts: no correction
    usage = codebook_usage(codes, 5)
    for k in range(3):
        values = codes[:, k].reshape(-1).tolist()
        assert usage.dead[k] == 5 - len(set(values))
        probs = [values.count(v) / len(values) for v in set(values)]
        assert usage.entropy[k] == pytest.approx(-sum(q * math.log2(q) for q in probs))


def test_kernel_test_rejects_dependent_streams_and_not_independent_ones():
    generator = torch.Generator().manual_seed(6)
    base = torch.randn(1, 1, 4, 300, generator=generator)
    dependent = torch.cat([base, base + 0.3 * torch.randn(1, 1, 4, 300, generator=generator)], dim=1)
    independent = torch.randn(1, 2, 4, 300, generator=generator)
    from audiocraft_mmd.metrics import aligned_rows
    seen = kernel_independence_test(aligned_rows(dependent, [0, 0]), permutations=30, max_rows=200)
    unseen = kernel_independence_test(aligned_rows(independent, [0, 0]), permutations=30, max_rows=200)
    assert seen.p_value <= 1 / 31 + 1e-9 and seen.statistic > seen.null_mean
    assert unseen.p_value > 0.05
    assert seen.rows == 200 and seen.estimator == DEFAULT_ESTIMATOR  # the loss's default
    with pytest.raises(ValueError, match="estimator"):
        kernel_independence_test(aligned_rows(dependent, [0, 0]), estimator="nope", permutations=2)


@pytest.mark.parametrize("codes, bins, delays, message", [
    (torch.zeros(2, 3, 10), 4, None, "integers"),
    (torch.full((2, 3, 10), 4), 4, None, r"\[0, 4\)"),
    (torch.full((2, 3, 10), -1), 4, None, r"\[0, 4\)"),
    (torch.zeros(2, 1, 10, dtype=torch.long), 4, None, "K = 1"),
    (torch.zeros(3, 10, dtype=torch.long), 4, None, "3-D"),
    (torch.zeros(2, 3, 10, dtype=torch.long), 4, [0, 1], "delays has 2 values"),
    (torch.zeros(2, 3, 10, dtype=torch.long), 4, [0, -1, 2], "non-negative"),
    (torch.zeros(2, 3, 10, dtype=torch.long), 4, [0, 1, 10], "max"),
])
def test_bad_inputs_fail_clearly(codes, bins, delays, message):
    with pytest.raises(ValueError, match=message):
        pairwise_mutual_information(codes, bins, delays)


def test_bad_options_fail_clearly():
    codes = torch.zeros(2, 2, 10, dtype=torch.long)
    with pytest.raises(ValueError, match="entropy estimator"):
        pairwise_mutual_information(codes, 4, entropy_estimator="magic")
    with pytest.raises(ValueError, match="ci_blocks"):
        pairwise_mutual_information(codes, 4, ci_blocks=1)
    with pytest.raises(ValueError, match="shifts"):
        pairwise_mutual_information(codes, 4, shifts=-1)


def test_a_million_frames_of_four_2048_entry_codebooks_take_seconds():
    generator = torch.Generator().manual_seed(7)
    codes = draw(zipf(BINS, 1.0, 10.0), (100, 4, 10_000), generator)
    start = time.perf_counter()
    report = dependence_report(codes, BINS, standard_alignments(4), shifts=3)
    elapsed = time.perf_counter() - start
    assert len(report.alignments["delay"].pairs) == 6
    assert elapsed < 30, f"{elapsed:.1f} s"  # about 5 s measured on a 2-core CPU


def test_evaluate_plugin_logs_mean_mi_under_both_alignments():
    from types import SimpleNamespace
    from audiocraft_mmd.quantization import CapturedStreams
    from audiocraft_mmd.solvers.evaluation import EVALUATION_PLUGINS, EvaluationBatch

    solver = SimpleNamespace(model=SimpleNamespace(quantizer=SimpleNamespace(bins=16)))
    plugin = EVALUATION_PLUGINS.lookup("dependence")(solver)
    generator = torch.Generator().manual_seed(8)
    for _ in range(4):
        x = torch.randint(0, 16, (8, 51), generator=generator)
        # codebook 1 copies codebook 0 one frame later (delay pattern); codebook 2 is independent
        codes = [x[:, :-1], x[:, 1:], torch.randint(0, 16, (8, 50), generator=generator)]
        captured = CapturedStreams(code_list=codes)
        plugin.update(EvaluationBatch(audio=None, reconstruction=None, captured=captured))
    metrics = plugin.compute()
    assert metrics["nmi_delay"] == pytest.approx(1 / 3, abs=0.03)  # one pair of three is a copy
    assert metrics["nmi_parallel"] == pytest.approx(0.0, abs=0.03)
    assert metrics["entropy_min"] == pytest.approx(4.0, abs=0.05)
    assert metrics["mi_frames_per_cell"] > 1
