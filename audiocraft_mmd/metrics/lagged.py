"""How dependence between codebooks decays with time: MI between codebook i at frame t and codebook j
at frame t - lag.

Same-frame MI mixes slow dependence (the piece, its instruments and loudness, shared by frames
seconds apart) with fast dependence (this frame's content). An LM that sees earlier frames already
knows the slow part, so only what the past does not tell can separate a joint LM (unroll) from a
product-of-marginals one (parallel): cross-codebook MI that stays high at lags of seconds is
dependence the parallel pattern loses little by ignoring within a frame. Frames are paired inside
a clip only; MI is bias-corrected as in :mod:`.dependence` (shifted nulls, occupancy scaling).
"""

from __future__ import annotations

from dataclasses import dataclass
import typing as tp

import torch

from .dependence import DEFAULT_ENTROPY_ESTIMATOR, _PairEstimator, _shift_fractions
from .information import ENTROPY_ESTIMATORS
from .usage import check_codes


@dataclass
class LagDependence:
    """Mean MI (bits) between codes ``lag`` frames apart.

    Attributes:
        lag: Frames between the two codes.
        cross_mi: Mean over ordered pairs i != j of I(C_i(t); C_j(t - lag)).
        auto_mi: Mean over k of I(C_k(t); C_k(t - lag)); None at lag 0 (a code with itself).
        pairs: ``pairs[i][j]`` = I(C_i(t); C_j(t - lag)) (the diagonal is the auto MI, None at lag 0).
        frames: Frame pairs per estimate.
    """
    lag: int
    cross_mi: float
    auto_mi: tp.Optional[float]
    pairs: tp.List[tp.List[tp.Optional[float]]]
    frames: int


def lagged_pair(codes: torch.Tensor, i: int, j: int, lag: int) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    """Flat codes of codebook i at frames t and of codebook j at t - lag, clip after clip: two ``[N]``."""
    frames = codes.shape[-1]
    return codes[:, i, lag:].reshape(-1).long(), codes[:, j, :frames - lag].reshape(-1).long()


def lagged_mutual_information(codes: torch.Tensor, bins: int, lags: tp.Sequence[int],
                              entropy_estimator: str = DEFAULT_ENTROPY_ESTIMATOR, shifts: int = 3,
                              seed: int = 0) -> tp.List[LagDependence]:
    """Cross- and auto-codebook MI of ``codes`` ``[B, K, T]`` at each lag (frames, 0 <= lag < T).

    Raises:
        ValueError: On codes that are not integer ``[B, K, T]`` in ``[0, bins)``, K < 2, or a lag
            that is negative or leaves fewer than 2 frame pairs.
    """
    check_codes(codes, bins, min_codebooks=2)
    codes = codes.cpu()
    num_clips, num_codebooks, num_frames = codes.shape
    for lag in lags:
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 0 or num_clips * (num_frames - lag) < 2:
            raise ValueError(f"lags must be ints in [0, {num_frames - 1}] leaving 2 frame pairs or more "
                             f"(clips of {num_frames} frames), got {lag!r}")
    estimate = _PairEstimator(bins, ENTROPY_ESTIMATORS.lookup(entropy_estimator),
                              _shift_fractions(shifts, torch.Generator().manual_seed(seed)))
    results = []
    for lag in lags:
        pairs: tp.List[tp.List[tp.Optional[float]]] = [[None] * num_codebooks for _ in range(num_codebooks)]
        cross: tp.List[float] = []  # i != j, in the order of pairs
        auto: tp.List[float] = []   # i == j, with lag > 0 only
        for i in range(num_codebooks):
            for j in range(num_codebooks):
                if i != j or lag > 0:
                    mi = estimate(*lagged_pair(codes, i, j, lag))["mi"]
                    pairs[i][j] = mi
                    (cross if i != j else auto).append(mi)
        results.append(LagDependence(lag=lag, cross_mi=sum(cross) / len(cross),
                                     auto_mi=sum(auto) / len(auto) if auto else None, pairs=pairs,
                                     frames=num_clips * (num_frames - lag)))
    return results
