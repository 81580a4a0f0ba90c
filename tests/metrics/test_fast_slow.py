"""Fast/slow split of the codebooks' MI (audiocraft_mmd.metrics.fast_slow) on synthetic codes whose
parts are known: dependence only through a per-clip variable is slow, frame-level dependence is fast,
delays are respected, and a gap that does not fit is refused."""

import pytest
import torch

from audiocraft_mmd.metrics import fast_slow_mutual_information, pairwise_mutual_information

BINS = 16


def noisy_copy(source: torch.Tensor, keep: float, generator: torch.Generator) -> torch.Tensor:
    """``source`` where a coin of probability ``keep`` says so, else a uniform code."""
    noise = torch.randint(0, BINS, source.shape, generator=generator)
    return torch.where(torch.rand(source.shape, generator=generator) < keep, source, noise)


def clip_level_codes(clips=64, steps=200, codebooks=3, seed=0) -> torch.Tensor:
    """Codebooks independent given a per-clip variable z: C_k[t] = z w.p. 0.5, else uniform."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randint(0, BINS, (clips, 1, 1), generator=generator).expand(clips, codebooks, steps)
    return noisy_copy(z, 0.5, generator)


def frame_level_codes(clips=64, steps=200, lag=0, seed=0) -> torch.Tensor:
    """No clip variable: C_0 i.i.d. uniform, C_1[t] a noisy copy of C_0[t - lag]."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, BINS, (clips, steps), generator=generator)
    second = noisy_copy(torch.roll(first, lag, dims=1), 0.5, generator)
    return torch.stack([first, second], dim=1)


def test_dependence_through_the_clip_only_is_slow():
    result = fast_slow_mutual_information(clip_level_codes(), BINS, gap=20, ci_blocks=8)
    assert result.total > 0.2  # clearly dependent when clips are pooled
    assert abs(result.fast) < 0.1 * result.total
    assert result.slow == pytest.approx(result.total, rel=0.1)
    low, high = result.intervals["fast"]
    assert low < 0 < high


def test_frame_level_dependence_is_fast():
    result = fast_slow_mutual_information(frame_level_codes(), BINS, gap=20, ci_blocks=8)
    assert result.total > 0.5
    assert abs(result.slow) < 0.05
    assert result.fast == pytest.approx(result.total, abs=0.05)
    assert result.intervals["fast"][0] > 0.3


def test_parts_add_up_and_total_is_the_dependence_reports_mi():
    codes = torch.cat([clip_level_codes(codebooks=2, seed=1), frame_level_codes(seed=2)])
    result = fast_slow_mutual_information(codes, BINS, gap=10, shifts=3, seed=5)
    reference = pairwise_mutual_information(codes, BINS, shifts=3, seed=5)
    assert result.total == pytest.approx(reference.mean("mi"), abs=1e-9)
    assert [(pair.i, pair.j) for pair in result.pairs] == [(0, 1)]
    for pair in result.pairs:
        assert pair.total == pytest.approx(pair.slow + pair.fast, abs=1e-12)
    assert 0.05 < result.slow < result.total and 0.05 < result.fast < result.total


def test_the_alignment_decides_what_is_fast():
    # One delay-pattern step holds C_0[s] and C_1[s - 1]: make C_1[t] a noisy copy of C_0[t + 1].
    codes = frame_level_codes(lag=-1)
    delay = fast_slow_mutual_information(codes, BINS, gap=20, delays=[0, 1])
    parallel = fast_slow_mutual_information(codes, BINS, gap=20, delays=[0, 0])
    assert delay.fast > 0.5
    assert abs(parallel.fast) < 0.05 and abs(parallel.slow) < 0.05


def test_bad_gap_and_blocks_are_refused():
    codes = frame_level_codes(clips=4, steps=30)
    with pytest.raises(ValueError, match="gap=16 steps does not fit"):
        fast_slow_mutual_information(codes, BINS, gap=16)
    with pytest.raises(ValueError, match="gap must be an int >= 1"):
        fast_slow_mutual_information(codes, BINS, gap=0)
    with pytest.raises(ValueError, match="ci_blocks must be 0 or between 2 and the number of clips"):
        fast_slow_mutual_information(codes, BINS, gap=5, ci_blocks=8)
