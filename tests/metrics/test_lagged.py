"""Lagged MI between codebooks (audiocraft_mmd.metrics.lagged): a slow loop reference, laws whose
dependence sits at a known lag, and slow (per-clip) dependence that does not decay."""

import math

import pytest
import torch

from audiocraft_mmd.metrics import lagged_mutual_information, pairwise_mutual_information


def plugin_mi_reference(codes: torch.Tensor, i: int, j: int, lag: int) -> float:
    """I(C_i(t); C_j(t - lag)) in bits from a joint histogram filled frame by frame inside each clip."""
    joint = {}
    for clip in codes.tolist():
        for t in range(lag, len(clip[i])):
            key = (clip[i][t], clip[j][t - lag])
            joint[key] = joint.get(key, 0) + 1
    total = sum(joint.values())
    left, right = {}, {}
    for (x, y), count in joint.items():
        left[x] = left.get(x, 0) + count
        right[y] = right.get(y, 0) + count
    return sum(count / total * math.log2(count * total / (left[x] * right[y])) for (x, y), count in joint.items())


def test_matches_a_loop_reference_without_bias_correction():
    codes = torch.randint(0, 6, (5, 3, 40), generator=torch.Generator().manual_seed(0))
    codes[:, 1, 2:] = (codes[:, 0, :-2] + torch.randint(0, 2, (5, 38))) % 6  # C_1(t) depends on C_0(t - 2)
    for result in lagged_mutual_information(codes, 6, [0, 1, 2, 7], entropy_estimator="plugin", shifts=0):
        for i in range(3):
            for j in range(3):
                expected = None if i == j and result.lag == 0 else plugin_mi_reference(codes, i, j, result.lag)
                if expected is None:
                    assert result.pairs[i][j] is None
                else:
                    assert result.pairs[i][j] == pytest.approx(expected, abs=1e-9)
        assert result.frames == 5 * (40 - result.lag)


def test_lag_zero_is_the_parallel_pairwise_mi():
    codes = torch.randint(0, 32, (8, 4, 500), generator=torch.Generator().manual_seed(1))
    codes[:, 2] = torch.where(torch.rand(8, 500, generator=torch.Generator().manual_seed(2)) < 0.5, codes[:, 0],
                              codes[:, 2])
    (lag0,) = lagged_mutual_information(codes, 32, [0])
    parallel = pairwise_mutual_information(codes, 32)
    for pair in parallel.pairs:
        assert lag0.pairs[pair.i][pair.j] == pytest.approx(pair.mi, abs=1e-9)
    assert lag0.auto_mi is None
    assert lag0.cross_mi == pytest.approx(sum(p.mi for p in parallel.pairs) / len(parallel.pairs), rel=0.05)


def test_a_delayed_copy_shows_at_its_lag_only():
    bins, lag = 16, 3
    codes = torch.randint(0, bins, (20, 2, 400), generator=torch.Generator().manual_seed(3))
    codes[:, 1, lag:] = codes[:, 0, :-lag]  # C_1(t) = C_0(t - 3), i.i.d. frames otherwise
    by_lag = {r.lag: r for r in lagged_mutual_information(codes, bins, [0, 1, lag, 10])}
    assert by_lag[lag].pairs[1][0] == pytest.approx(4., abs=0.1)  # log2(16) bits: a copy
    for other in (0, 1, 10):
        assert abs(by_lag[other].pairs[1][0]) < 0.05
    for result in by_lag.values():
        assert abs(result.pairs[0][1]) < 0.05  # C_0(t) is independent of C_1's past
        if result.lag == 0:  # a code with itself: not measured
            assert result.auto_mi is None
        else:
            assert result.auto_mi is not None and abs(result.auto_mi) < 0.05, result.lag


def test_per_clip_dependence_does_not_decay_with_the_lag():
    generator = torch.Generator().manual_seed(4)
    clips, frames = 400, 60
    shared = torch.randint(0, 4, (clips, 1, 1), generator=generator).expand(clips, 2, frames)
    codes = shared * 4 + torch.randint(0, 4, (clips, 2, frames), generator=generator)  # 2 bits shared per clip
    results = lagged_mutual_information(codes, 16, [0, 1, 30])
    for result in results:
        assert result.cross_mi == pytest.approx(2., abs=0.1)
        if result.lag == 0:
            assert result.auto_mi is None
        else:
            assert result.auto_mi == pytest.approx(2., abs=0.1), result.lag


@pytest.mark.parametrize("lag", [-1, 60, 1.5, True])
def test_bad_lags_are_refused(lag):
    codes = torch.zeros(1, 2, 60, dtype=torch.long)
    with pytest.raises(ValueError, match="lags must be ints"):
        lagged_mutual_information(codes, 4, [lag])
