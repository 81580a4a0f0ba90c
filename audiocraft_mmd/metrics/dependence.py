"""Dependence between the codebooks of a codec, measured on integer codes ``[B, K, T]``.

For every pair of codebooks (i, j), under a given alignment (per-codebook delays, the convention of
:func:`audiocraft_mmd.losses.mmd.align_streams`), the mutual information I(C_i; C_j) in bits:

- ``mi_plugin``: plug-in ``Ĥ(C_i) + Ĥ(C_j) - Ĥ(C_i, C_j)`` with the chosen entropy estimator
  (default ``grassberger``, see :mod:`.information`).
- ``null_mean`` / ``null_std``: the same value after circularly shifting stream j by a random
  offset (``shifts`` times). A shift keeps both marginals and each stream's own time structure and
  destroys the dependence, so its mean is the estimator's bias for an independent pair at this
  sparsity (often bits at 2048 bins and 1e5 frames).
- ``mi_shift``: ``mi_plugin - null_mean``. Centred on 0 for independent codebooks at any sparsity,
  but biased LOW for dependent ones when the joint histogram is sparse: a dependent law occupies
  fewer joint cells than the null, so its own bias is smaller (a copy of a 9.5-bit codebook at 1e5
  frames reads 80 % of its entropy).
- ``mi`` (reported): ``mi_plugin - null_mean · m / m_null``, the null bias scaled by the ratio
  ``occupancy_ratio`` of occupied joint cells (data / null), as the Miller–Madow bias
  ``(m - 1) / 2N`` scales with them. Exact at both ends (independence: ratio ≈ 1; copy: ratio ≈
  2^H / N) and measured within 10 % on copy-mixture laws with MI ≥ 0.1 bit at 2048 bins and 1e5
  frames even at 0.2 frame per effective cell; its spread under independence is about 1.5 times
  that of ``mi_shift``. A heuristic validated on those laws (tests/test_dependence.py), not a theorem.
- ``normalized``: ``mi / min(H_i, H_j)`` with plug-in marginal entropies: 1 for a copy, 0 for
  independence; 0 when a codebook has zero entropy.
- ``frames_per_cell``: frames / ``bins²`` and ``frames_per_effective_cell``: frames /
  ``2^(H_i + H_j)``, the cells an independent pair would actually spread over. ``regime`` reads the
  latter: ``"sampled"`` (≥ 30: ``mi`` and ``mi_shift`` within about 10 %), ``"sparse"`` (1 to 30)
  and ``"undersampled"`` (< 1), where ``mi_shift`` reads low by up to about 20 % and 50 % and ``mi``
  rests on the occupancy heuristic above.
- ``ci_low`` / ``ci_high``: 95 % interval ``mi ± 1.96 · SE``, SE from a delete-a-block jackknife
  (blocks = groups of whole clips, or contiguous runs of frames; never single frames, which are
  correlated). Not a with-replacement bootstrap: a resample repeats whole blocks, which creates
  spurious joint coincidences in a sparse histogram; measured at 2048 bins and 1e5 frames, it
  inflated the interval of an independent pair to ±0.7 bit.

The total correlation ``Σ H(C_k) - H(C_1..K)`` is reported only when the K-tuple histogram is
sampled (Good–Turing coverage ≥ 0.9 and plug-in joint entropy below ``log2 N - 1``); otherwise
:class:`TotalCorrelation` says why it is not estimable. Pure torch: nothing here imports AudioCraft.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import math
import typing as tp

import torch

from ..losses.mmd import align_streams
from .information import (ENTROPY_ESTIMATORS, coverage, occupied_counts, pair_ids, plugin_entropy,
                          tuple_ids)
from .usage import CodebookUsage, check_codes, codebook_usage

DEFAULT_ENTROPY_ESTIMATOR = "grassberger"
# frames / 2^(H_i + H_j) thresholds of the regimes (measured, see module docstring).
SAMPLED_FRAMES_PER_CELL = 30.0
SPARSE_FRAMES_PER_CELL = 1.0
# Total correlation is reported only above this Good–Turing coverage of the K-tuple histogram.
MIN_TUPLE_COVERAGE = 0.9
Z_95 = 1.959964


def check_delays(delays: tp.Optional[tp.Sequence[int]], num_codebooks: int) -> tp.Tuple[int, ...]:
    """``delays`` as K non-negative ints (None: all zeros), with a clear error otherwise."""
    if delays is None:
        return (0,) * num_codebooks
    if isinstance(delays, (str, bytes)) or not isinstance(delays, tp.Iterable):
        raise ValueError(f"delays must be a sequence of K = {num_codebooks} non-negative ints, got {delays!r}")
    delays = tuple(delays)
    if len(delays) != num_codebooks:
        raise ValueError(f"delays has {len(delays)} values but codes have K = {num_codebooks} codebooks")
    return delays  # values are checked by align_streams


def align_codes(codes: torch.Tensor, delays: tp.Optional[tp.Sequence[int]]) -> torch.Tensor:
    """Aligns ``[B, K, T]`` codes by per-codebook delays: ``[B, K, T']``, ``T' = T - max(delays)``.

    Same convention as the loss (:func:`audiocraft_mmd.losses.mmd.align_streams`, which this calls
    on a singleton vector dimension): aligned step t holds codebook k's frame ``t + max - delays[k]``.
    """
    delays = check_delays(delays, codes.shape[1])
    return align_streams(codes.unsqueeze(2), delays).squeeze(2)


def flatten_codes(aligned: torch.Tensor) -> torch.Tensor:
    """``[B, K, T']`` -> ``[K, N]``, clip after clip (N = B·T')."""
    return aligned.transpose(0, 1).reshape(aligned.shape[1], -1).long()


@dataclass
class PairMI:
    """Mutual information between codebooks i and j under one alignment; see the module docstring."""
    i: int
    j: int
    mi: float
    mi_shift: float
    mi_plugin: float
    null_mean: float
    null_std: float
    occupancy_ratio: float
    normalized: float
    entropy_i: float
    entropy_j: float
    occupied_cells: int
    frames_per_cell: float
    frames_per_effective_cell: float
    regime: str
    ci_low: tp.Optional[float] = None
    ci_high: tp.Optional[float] = None


@dataclass
class TotalCorrelation:
    """``Σ H(C_k) - H(C_1..K)`` in bits, or why it cannot be estimated from these frames.

    Attributes:
        estimable: False in the saturated regime; ``value`` is then None.
        value: Bias-corrected total correlation (plug-in minus the mean over shifted nulls).
        joint_entropy_plugin: Plug-in entropy of the K-tuples.
        log2_frames: ``log2 N``, the ceiling of any plug-in entropy over N frames.
        coverage: Good–Turing coverage of the K-tuple histogram.
        reason: Why it is not estimable, else empty.
    """
    estimable: bool
    value: tp.Optional[float]
    joint_entropy_plugin: float
    log2_frames: float
    coverage: float
    reason: str = ""


@dataclass
class AlignmentDependence:
    """Pairwise MI of K codebooks under one alignment.

    Attributes:
        name: Alignment name (e.g. ``"parallel"``, ``"delay"``).
        delays: Per-codebook delays.
        frames: N aligned frames.
        entropy_estimator: Name of the entropy estimator.
        shifts: Number of circularly shifted nulls averaged for the bias correction.
        pairs: One :class:`PairMI` per pair i < j.
        total_correlation: See :class:`TotalCorrelation`.
    """
    name: str
    delays: tp.List[int]
    frames: int
    entropy_estimator: str
    shifts: int
    pairs: tp.List[PairMI]
    total_correlation: TotalCorrelation

    @property
    def num_codebooks(self) -> int:
        return len(self.delays)

    def matrix(self, key: str = "normalized") -> torch.Tensor:
        """Symmetric ``[K, K]`` matrix of a :class:`PairMI` field (diagonal: NaN)."""
        matrix = torch.full((self.num_codebooks, self.num_codebooks), float("nan"), dtype=torch.float64)
        for pair in self.pairs:
            matrix[pair.i, pair.j] = matrix[pair.j, pair.i] = getattr(pair, key)
        return matrix

    def mean(self, key: str = "mi") -> float:
        return sum(getattr(pair, key) for pair in self.pairs) / len(self.pairs)

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        data = asdict(self)
        data["mean_mi"] = self.mean("mi")
        data["mean_normalized"] = self.mean("normalized")
        data["mean_mi_shift"] = self.mean("mi_shift")
        data["mean_mi_plugin"] = self.mean("mi_plugin")
        return data


@dataclass
class KernelTest:
    """The training criterion on continuous streams, with a permutation-test p-value.

    Attributes:
        alignment: Alignment name.
        estimator: Name in the loss's estimator registry.
        statistic: MMD² estimate on the joint rows.
        p_value: ``(1 + #{null ≥ statistic}) / (1 + permutations)``.
        permutations: Null draws (rows permuted independently per codebook).
        rows: Rows used (subsampled to bound the O(N²) kernel).
        null_mean: Mean of the null statistics.
    """
    alignment: str
    estimator: str
    statistic: float
    p_value: float
    permutations: int
    rows: int
    null_mean: float


@dataclass
class DependenceReport:
    """Everything measured on one codec's codes: usage, pairwise MI per alignment, kernel tests."""
    usage: CodebookUsage
    alignments: tp.Dict[str, AlignmentDependence]
    kernel_tests: tp.Dict[str, KernelTest] = field(default_factory=dict)

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        return {
            "usage": self.usage.to_dict(),
            "alignments": {name: value.to_dict() for name, value in self.alignments.items()},
            "kernel_tests": {name: asdict(value) for name, value in self.kernel_tests.items()},
        }


def _regime(frames_per_effective_cell: float) -> str:
    if frames_per_effective_cell >= SAMPLED_FRAMES_PER_CELL:
        return "sampled"
    if frames_per_effective_cell >= SPARSE_FRAMES_PER_CELL:
        return "sparse"
    return "undersampled"


def _shift_fractions(shifts: int, generator: torch.Generator) -> tp.List[float]:
    # Offsets as fractions of N, far from 0 and 1 so that a shifted stream never meets its own
    # neighbourhood; fractions (not frames) so that jackknife replicates reuse the same nulls.
    return (0.1 + 0.8 * torch.rand(shifts, generator=generator, dtype=torch.float64)).tolist()


class _PairValues(tp.TypedDict):
    """What :class:`_PairEstimator` measures on one pair: those fields of :class:`PairMI`."""
    mi: float
    mi_shift: float
    mi_plugin: float
    null_mean: float
    null_std: float
    occupancy_ratio: float
    occupied_cells: int


class _PairEstimator:
    """Bias-corrected MI of one pair of flat streams ``[N]`` (values in ``[0, bins)``).

    Args:
        bins: Entries per codebook.
        entropy: Entropy estimator on occupied-cell counts.
        shift_fractions: Circular shifts of the nulls, as fractions of N.
    """

    def __init__(self, bins: int, entropy: tp.Callable[[torch.Tensor], torch.Tensor],
                 shift_fractions: tp.Sequence[float]):
        self.bins, self.entropy, self.shift_fractions = bins, entropy, list(shift_fractions)

    def joint(self, x: torch.Tensor, y: torch.Tensor) -> tp.Tuple[float, int]:
        counts = occupied_counts(pair_ids(x, y, self.bins), self.bins ** 2)
        return float(self.entropy(counts)), counts.numel()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> _PairValues:
        n = x.numel()
        h_x = float(self.entropy(occupied_counts(x, self.bins)))
        h_y = float(self.entropy(occupied_counts(y, self.bins)))
        h_xy, occupied = self.joint(x, y)
        plugin = h_x + h_y - h_xy
        nulls, null_occupied = [], []
        for fraction in self.shift_fractions:
            h_null, m_null = self.joint(x, torch.roll(y, max(1, int(fraction * n))))
            nulls.append(h_x + h_y - h_null)
            null_occupied.append(m_null)
        null = torch.tensor(nulls, dtype=torch.float64)
        null_mean = float(null.mean()) if nulls else 0.0
        scale = occupied / (sum(null_occupied) / len(null_occupied)) if nulls else 1.0
        return {
            "mi": plugin - null_mean * scale, "mi_shift": plugin - null_mean, "mi_plugin": plugin,
            "null_mean": null_mean, "null_std": float(null.std()) if len(nulls) > 1 else 0.0,
            "occupancy_ratio": scale, "occupied_cells": occupied,
        }


def _blocks(num_clips: int, clip_frames: int, num_blocks: int) -> tp.List[torch.Tensor]:
    """Frame indices of the flat streams, split into ``num_blocks`` groups of whole clips when there
    are at least that many clips, else into contiguous runs of frames."""
    total = num_clips * clip_frames
    if num_blocks < 2:
        raise ValueError(f"ci_blocks must be 0 (no interval) or >= 2, got {num_blocks}")
    if num_clips >= num_blocks:
        clips = torch.arange(total).reshape(num_clips, clip_frames)
        return [group.reshape(-1) for group in torch.tensor_split(clips, num_blocks)]
    if total < 2 * num_blocks:
        raise ValueError(f"ci_blocks={num_blocks} needs at least {2 * num_blocks} frames, got {total}")
    return list(torch.tensor_split(torch.arange(total), num_blocks))


def _jackknife_standard_error(values: tp.Sequence[float]) -> float:
    """Delete-a-group jackknife: ``sqrt((G - 1) / G · Σ (θ_g - θ̄)²)``."""
    replicates = torch.tensor(values, dtype=torch.float64)
    count = replicates.numel()
    return float(((count - 1) / count * (replicates - replicates.mean()).pow(2).sum()).sqrt())


def pairwise_mutual_information(codes: torch.Tensor, bins: int,
                                delays: tp.Optional[tp.Sequence[int]] = None,
                                name: str = "custom",
                                entropy_estimator: str = DEFAULT_ENTROPY_ESTIMATOR,
                                shifts: int = 3,
                                ci_blocks: int = 0,
                                seed: int = 0) -> AlignmentDependence:
    """Bias-corrected pairwise MI (bits) of every pair of codebooks, and the total correlation.

    Args:
        codes: ``[B, K, T]`` integer codes in ``[0, bins)``, K >= 2.
        bins: Entries per codebook.
        delays: K per-codebook delays (None: parallel, all zeros).
        name: Alignment name stored in the result.
        entropy_estimator: A key of :data:`.information.ENTROPY_ESTIMATORS`.
        shifts: Circularly shifted nulls averaged for the bias correction (0: no correction).
        ci_blocks: Blocks of the jackknife confidence intervals (0: none): groups of whole clips when
            B >= ci_blocks, else contiguous runs of frames.
        seed: Seed of the shifts.

    Returns:
        An :class:`AlignmentDependence`.

    Raises:
        ValueError: On codes that are not integer ``[B, K, T]`` in ``[0, bins)``, K < 2, delays of the
            wrong length or sign, too few frames, or an unknown estimator.
    """
    check_codes(codes, bins, min_codebooks=2)
    entropy = ENTROPY_ESTIMATORS.lookup(entropy_estimator)
    if isinstance(shifts, bool) or not isinstance(shifts, int) or shifts < 0:
        raise ValueError(f"shifts must be an int >= 0, got {shifts!r}")
    delays = check_delays(delays, codes.shape[1])
    aligned = align_codes(codes.cpu(), delays)
    flat = flatten_codes(aligned)
    num_codebooks, num_frames = flat.shape
    if num_frames < 2:
        raise ValueError(f"only {num_frames} frame(s) left after the alignment {list(delays)}")
    generator = torch.Generator().manual_seed(seed)
    estimate = _PairEstimator(bins, entropy, _shift_fractions(shifts, generator))
    marginal = [float(plugin_entropy(occupied_counts(flat[k], bins))) for k in range(num_codebooks)]

    pairs = []
    for i in range(num_codebooks):
        for j in range(i + 1, num_codebooks):
            values = estimate(flat[i], flat[j])
            floor = min(marginal[i], marginal[j])
            effective = num_frames / 2 ** (marginal[i] + marginal[j])
            pairs.append(PairMI(
                i=i, j=j, normalized=values["mi"] / floor if floor > 0 else 0.0,
                entropy_i=marginal[i], entropy_j=marginal[j],
                frames_per_cell=num_frames / bins ** 2, frames_per_effective_cell=effective,
                regime=_regime(effective), **values))

    if ci_blocks:
        # Leave-one-block-out replicates of the whole corrected estimate, nulls at the same shifts.
        groups = _blocks(aligned.shape[0], aligned.shape[2], ci_blocks)
        replicates: tp.Dict[tp.Tuple[int, int], tp.List[float]] = {(pair.i, pair.j): [] for pair in pairs}
        for left_out in range(len(groups)):
            kept = torch.cat([group for g, group in enumerate(groups) if g != left_out])
            sample = flat[:, kept]
            for pair in pairs:
                replicates[(pair.i, pair.j)].append(estimate(sample[pair.i], sample[pair.j])["mi"])
        for pair in pairs:
            error = _jackknife_standard_error(replicates[(pair.i, pair.j)])
            pair.ci_low, pair.ci_high = pair.mi - Z_95 * error, pair.mi + Z_95 * error

    return AlignmentDependence(
        name=name, delays=list(delays), frames=num_frames, entropy_estimator=entropy_estimator, shifts=shifts,
        pairs=pairs, total_correlation=total_correlation(flat, bins, marginal, entropy, shifts, generator))


def total_correlation(flat: torch.Tensor, bins: int, marginal_entropies: tp.Sequence[float],
                      entropy: tp.Callable[[torch.Tensor], torch.Tensor], shifts: int,
                      generator: torch.Generator) -> TotalCorrelation:
    """Total correlation of the K-tuples of aligned flat codes ``[K, N]``, if the histogram allows."""
    num_frames = flat.shape[1]
    counts = occupied_counts(tuple_ids(flat, bins))
    joint_plugin = float(plugin_entropy(counts))
    log2_frames = math.log2(num_frames)
    seen = coverage(counts)
    if seen < MIN_TUPLE_COVERAGE or joint_plugin > log2_frames - 1:
        return TotalCorrelation(
            estimable=False, value=None, joint_entropy_plugin=joint_plugin, log2_frames=log2_frames, coverage=seen,
            reason=(f"saturated: the K-tuple histogram has coverage {seen:.3f} < {MIN_TUPLE_COVERAGE} and/or plug-in "
                    f"joint entropy {joint_plugin:.2f} bits within 1 bit of log2 N = {log2_frames:.2f}; any "
                    "plug-in total correlation here measures the frame count, not the dependence"))
    sum_marginals = sum(float(entropy(occupied_counts(row, bins))) for row in flat)
    value = sum_marginals - float(entropy(counts))
    nulls = []
    for _ in range(shifts):
        fractions = [0.0] + _shift_fractions(flat.shape[0] - 1, generator)
        shifted = torch.stack([torch.roll(row, int(f * num_frames)) for row, f in zip(flat, fractions)])
        nulls.append(sum_marginals - float(entropy(occupied_counts(tuple_ids(shifted, bins)))))
    if nulls:
        value -= sum(nulls) / len(nulls)
    return TotalCorrelation(estimable=True, value=value, joint_entropy_plugin=joint_plugin,
                            log2_frames=log2_frames, coverage=seen)


def dependence_report(codes: torch.Tensor, bins: int, alignments: tp.Mapping[str, tp.Sequence[int]],
                      **kwargs: tp.Any) -> DependenceReport:
    """Usage and pairwise MI of ``codes`` ``[B, K, T]`` under each named alignment (name -> delays).

    Keyword arguments go to :func:`pairwise_mutual_information`. Kernel tests, which need the
    continuous streams, are added with :func:`audiocraft_mmd.metrics.kernel_test.kernel_independence_test`.
    """
    check_codes(codes, bins, min_codebooks=2)
    return DependenceReport(
        usage=codebook_usage(codes, bins),
        alignments={name: pairwise_mutual_information(codes, bins, delays, name=name, **kwargs)
                    for name, delays in alignments.items()})


def standard_alignments(num_codebooks: int) -> tp.Dict[str, tp.List[int]]:
    """``parallel`` (all delays 0) and ``delay`` (codebook k delayed by k frames, MusicGen's pattern)."""
    return {"parallel": [0] * num_codebooks, "delay": list(range(num_codebooks))}
