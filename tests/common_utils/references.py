"""Slow references written from the definitions, to test the fast code against."""

import typing as tp

import torch


def brute_force_hsic(samples: torch.Tensor, bandwidths: tp.Sequence[float]) -> torch.Tensor:
    """J - 2C + P from the full per-codebook Gram matrices, written from the definitions."""
    n = samples.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    diffs = samples[:, None] - samples[None]                                   # [N, N, K, D]
    total = samples.new_zeros(())
    for a in bandwidths:
        kernels = torch.exp(-diffs.pow(2).sum(-1) / (2 * a)) * off_diagonal[..., None]  # [N, N, K]
        joint = kernels.prod(-1).sum() / (n * (n - 1))
        cross = (kernels.sum(1) / (n - 1)).prod(-1).mean()
        product = (kernels.sum((0, 1)) / (n * (n - 1))).prod()
        total = total + joint - 2 * cross + product
    return total
