"""Permutation test of independence with the training criterion on continuous per-codebook vectors.

The statistic is the loss's MMD² between the joint law of the K vectors of an aligned step and the
product of the marginals (:func:`audiocraft_mmd.losses.mmd.mmd_independence`, estimator looked up by
name in the loss's registry). Its null distribution is drawn by permuting the rows independently
per codebook, which keeps every marginal and breaks the dependence. Pure torch.
"""

from __future__ import annotations

import typing as tp

import torch

from ..losses.mmd import DEFAULT_BANDWIDTHS, DEFAULT_ESTIMATOR, align_streams, mmd_independence
from ..losses.mmd_estimators import permutation_indices, product_of_marginals
from .dependence import KernelTest, check_delays


def aligned_rows(streams: torch.Tensor, delays: tp.Optional[tp.Sequence[int]]) -> torch.Tensor:
    """``[B, K, D, T]`` streams -> ``[N, K, D]`` rows of aligned steps (N = B·T')."""
    if streams.dim() != 4:
        raise ValueError(f"streams must be 4-D [B, K, D, T], got shape {tuple(streams.shape)}")
    aligned = align_streams(streams, check_delays(delays, streams.shape[1]))
    return aligned.permute(0, 3, 1, 2).reshape(-1, aligned.shape[1], aligned.shape[2])


def _statistic(rows: torch.Tensor, generator: torch.Generator, **options: tp.Any) -> float:
    # [N, K, D] -> [1, K, D, N]: one "clip" whose steps are the rows, already aligned.
    result = mmd_independence(rows.permute(1, 2, 0).unsqueeze(0), delays=None, clamp=False,
                              generator=generator, **options)
    return float(result.estimate)


def kernel_independence_test(rows: torch.Tensor,
                             alignment: str = "custom",
                             estimator: str = DEFAULT_ESTIMATOR,
                             bandwidths: tp.Sequence[float] = DEFAULT_BANDWIDTHS,
                             bandwidth_scale: str = "dim",
                             standardize: str = "feature",
                             permutations: int = 100,
                             max_rows: int = 512,
                             seed: int = 0) -> KernelTest:
    """MMD² independence statistic of aligned rows and its permutation-test p-value.

    Args:
        rows: ``[N, K, D]`` aligned per-codebook vectors (e.g. from :func:`aligned_rows`), K >= 2.
        alignment: Name stored in the result.
        estimator: A name in :data:`audiocraft_mmd.losses.ESTIMATORS` (pass the loss's configured one).
        bandwidths, bandwidth_scale, standardize: As for the loss.
        permutations: Null draws.
        max_rows: Rows kept (a random subset) to bound the O(N²) kernel matrices.
        seed: Seed of the subset, the estimator and the permutations.

    Returns:
        A :class:`KernelTest`.
    """
    if rows.dim() != 3 or rows.shape[1] < 2:
        raise ValueError(f"rows must be [N, K >= 2, D], got shape {tuple(rows.shape)}")
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    generator = torch.Generator().manual_seed(seed)
    rows = rows.detach().float().cpu()
    if rows.shape[0] > max_rows:
        rows = rows[torch.randperm(rows.shape[0], generator=generator)[:max_rows]]
    options = dict(estimator=estimator, bandwidths=bandwidths, bandwidth_scale=bandwidth_scale,
                   standardize=standardize)
    with torch.no_grad():
        observed = _statistic(rows, generator, **options)
        null = [_statistic(product_of_marginals(rows, permutation_indices(rows.shape[0], rows.shape[1], generator)),
                           generator, **options) for _ in range(permutations)]
    exceed = sum(value >= observed for value in null)
    return KernelTest(alignment=alignment, estimator=estimator, statistic=observed,
                      p_value=(1 + exceed) / (1 + permutations), permutations=permutations, rows=rows.shape[0],
                      null_mean=sum(null) / len(null))
