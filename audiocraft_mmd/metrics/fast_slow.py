"""Fast and slow dependence between codebooks: what a parallel/delay LM pays for, and what it does not.

A parallel or delay LM predicts the codes of one step independently given the past. Part of the
codebooks' mutual information comes from what the *piece* is (instruments, loudness, register):
codes seconds apart share it, and an LM reads it from its context whatever its pattern. This module
splits the aligned MI of each pair of codebooks into

- ``slow``: the MI between codebook i at an aligned step t and codebook j at a step of the SAME clip
  at least ``gap`` steps away: I(C_i[t]; C_j[t + o_b]), with one offset o_b per clip drawn uniformly
  in ``[gap, T' - gap]`` and applied circularly inside the clip (so every step is used once). What
  a clip-level cause explains; the dependence the product of marginals *within a clip* keeps.
- ``fast = total - slow``, with ``total`` = I(C_i[t]; C_j[t]) under the alignment (the dependence
  reports' ``mi``): the dependence between the codes of one LM step beyond what the clip tells.

Every term is the bias-corrected plug-in MI of :mod:`.dependence` (same estimator, same number of
pairs, nulls from shifts across clips), so their biases match and cancel in the difference. Exact
parts on synthetic codes: codebooks that depend only through a per-clip variable read ``fast`` ≈ 0
and ``slow`` ≈ ``total``; frame-level dependence with no clip variable reads ``slow`` ≈ 0
(tests/test_fast_slow.py). ``slow`` is close to the lagged MI at lags of a second or more
(:mod:`.lagged`). Intervals: a delete-a-group-of-clips jackknife of the mean over pairs, the three
terms recomputed on the same replicates. Pure torch: nothing here imports AudioCraft.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import typing as tp

import torch

from .dependence import (DEFAULT_ENTROPY_ESTIMATOR, Z_95, _PairEstimator, _blocks, _jackknife_standard_error,
                         _shift_fractions, align_codes, check_delays, flatten_codes)
from .information import ENTROPY_ESTIMATORS
from .usage import check_codes


@dataclass
class FastSlowPair:
    """Bits of MI between codebooks i and j: ``total`` = ``slow`` + ``fast``."""
    i: int
    j: int
    total: float
    slow: float
    fast: float


@dataclass
class FastSlowDependence:
    """The mean over pairs of the fast/slow split under one alignment, with 95 % intervals.

    Attributes:
        name: Alignment name.
        delays: Per-codebook delays of the alignment.
        gap: Least distance, in aligned steps, between the codes of a slow pair.
        frames: Aligned steps per estimate (clips x steps per clip).
        total, slow, fast: Means over pairs (bits).
        intervals: ``{"total": (low, high), ...}`` when ``ci_blocks`` was given, else empty.
        pairs: One :class:`FastSlowPair` per pair i < j.
    """
    name: str
    delays: tp.List[int]
    gap: int
    frames: int
    total: float
    slow: float
    fast: float
    pairs: tp.List[FastSlowPair]
    intervals: tp.Dict[str, tp.Tuple[float, float]]

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        return asdict(self)


def clip_offsets(num_clips: int, clip_steps: int, gap: int, generator: torch.Generator) -> torch.Tensor:
    """One offset per clip, uniform in ``[gap, clip_steps - gap]``: ``[num_clips]`` longs."""
    return torch.randint(gap, clip_steps - gap + 1, (num_clips,), generator=generator)


def roll_within_clips(aligned: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``[B, T']`` codes with clip b circularly shifted by ``offsets[b]`` steps (step t gets t + o_b)."""
    steps = aligned.shape[-1]
    index = (torch.arange(steps)[None, :] + offsets[:, None]) % steps
    return aligned.gather(-1, index)


def _check_gap(gap: int, clip_steps: int) -> int:
    if isinstance(gap, bool) or not isinstance(gap, int) or gap < 1:
        raise ValueError(f"gap must be an int >= 1 (aligned steps), got {gap!r}")
    if clip_steps < 2 * gap:
        raise ValueError(f"gap={gap} steps does not fit twice in clips of {clip_steps} aligned steps: a slow pair "
                         f"needs codes at least {gap} steps apart both ways round the clip; use longer clips or a "
                         f"gap of at most {clip_steps // 2}")
    return gap


def fast_slow_mutual_information(codes: torch.Tensor, bins: int, gap: int,
                                 delays: tp.Optional[tp.Sequence[int]] = None, name: str = "custom",
                                 entropy_estimator: str = DEFAULT_ENTROPY_ESTIMATOR, shifts: int = 3,
                                 ci_blocks: int = 0, seed: int = 0) -> FastSlowDependence:
    """Splits the aligned pairwise MI of ``codes`` ``[B, K, T]`` into slow and fast parts (see module doc).

    Args:
        codes: Integer codes in ``[0, bins)``, one row per clip, K >= 2.
        bins: Entries per codebook.
        gap: Least distance (aligned steps) between the codes of a slow pair; at most half a clip.
        delays: Per-codebook delays of the alignment (None: parallel).
        name: Alignment name stored in the result.
        entropy_estimator: A key of :data:`.information.ENTROPY_ESTIMATORS`.
        shifts: Shifted nulls of the bias correction (as :func:`.dependence.pairwise_mutual_information`).
        ci_blocks: Groups of clips of the jackknife intervals (0: none; else at least 2 and at most B).
        seed: Seed of the clip offsets and of the nulls.

    Raises:
        ValueError: On bad codes, delays, a gap that does not fit in the clips, or bad ``ci_blocks``.
    """
    check_codes(codes, bins, min_codebooks=2)
    delays = check_delays(delays, codes.shape[1])
    aligned = align_codes(codes.cpu(), delays).long()
    num_clips, num_codebooks, clip_steps = aligned.shape
    gap = _check_gap(gap, clip_steps)
    if ci_blocks and not 2 <= ci_blocks <= num_clips:
        raise ValueError(f"ci_blocks must be 0 or between 2 and the number of clips ({num_clips}), got {ci_blocks}")
    generator = torch.Generator().manual_seed(seed)
    estimate = _PairEstimator(bins, ENTROPY_ESTIMATORS.lookup(entropy_estimator), _shift_fractions(shifts, generator))
    offsets = clip_offsets(num_clips, clip_steps, gap, generator)
    flat = flatten_codes(aligned)                                     # [K, N], clip after clip
    rolled = torch.stack([roll_within_clips(aligned[:, k], offsets) for k in range(num_codebooks)])
    flat_rolled = rolled.reshape(num_codebooks, -1)                   # [K, N], codebook k shifted within clips
    pair_index = [(i, j) for i in range(num_codebooks) for j in range(i + 1, num_codebooks)]

    def split(frames: tp.Optional[torch.Tensor]) -> tp.List[tp.Tuple[float, float]]:
        x, y = (flat, flat_rolled) if frames is None else (flat[:, frames], flat_rolled[:, frames])
        return [(estimate(x[i], x[j])["mi"], estimate(x[i], y[j])["mi"]) for i, j in pair_index]

    values = split(None)
    pairs = [FastSlowPair(i, j, total, slow, total - slow) for (i, j), (total, slow) in zip(pair_index, values)]
    means = {key: sum(getattr(pair, key) for pair in pairs) / len(pairs) for key in ("total", "slow", "fast")}
    intervals: tp.Dict[str, tp.Tuple[float, float]] = {}
    if ci_blocks:
        replicates: tp.Dict[str, tp.List[float]] = {"total": [], "slow": [], "fast": []}
        groups = _blocks(num_clips, clip_steps, ci_blocks)
        for left_out in range(len(groups)):
            kept = torch.cat([group for g, group in enumerate(groups) if g != left_out])
            sample = split(kept)
            replicates["total"].append(sum(t for t, _ in sample) / len(sample))
            replicates["slow"].append(sum(s for _, s in sample) / len(sample))
            replicates["fast"].append(sum(t - s for t, s in sample) / len(sample))
        for key, values_ in replicates.items():
            error = _jackknife_standard_error(values_)
            intervals[key] = (means[key] - Z_95 * error, means[key] + Z_95 * error)
    return FastSlowDependence(name=name, delays=list(delays), gap=gap, frames=flat.shape[1], pairs=pairs,
                              intervals=intervals, **means)
