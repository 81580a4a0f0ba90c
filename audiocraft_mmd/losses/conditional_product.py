"""A conditional product of marginals: codebook j's vectors swapped only among rows with the same past.

The paper's product of marginals swaps each codebook's vectors among all rows, so dependence that
the past explains counts too. Here (after Runge's local-permutation test of conditional independence,
AISTATS 2018) codebook j of row i is taken from a row drawn among the ``neighbours`` rows whose
contexts (the causal predictor's state, what it read of the past) are nearest to row i's, codebook 1
staying in place. Codes that depend on each other only through their shared past keep their joint
law under such swaps, so MMD²(joint, conditional product) reads ≈ 0 on them; a dependence within the
step is broken by the swaps and reads > 0.

Neighbours are drawn with replacement (a local bootstrap, not Runge's restricted permutation): each
codebook's set of vectors changes slightly, which the estimate tolerates at the row counts used here.
The estimate leaves out the pairs that share a block: joint against product rows (as
``permutation_debiased`` does), and product rows that took the same codebook's vector from the same
row (which drawing with replacement makes common, and which would bias the estimate upwards).

Pure torch: nothing here imports AudioCraft.
"""

from __future__ import annotations

import typing as tp

import torch

from .innovations import CausalPredictor, standardize_steps
from .mmd import BANDWIDTH_SCALES, MMDIndependence, align_streams
from .mmd_estimators import shared_block_pairs, squared_distances


def neighbour_indices(contexts: torch.Tensor, neighbours: int) -> torch.Tensor:
    """``[N, neighbours]``: for each row, the rows with the nearest contexts ``[N, H]`` (itself excluded)."""
    num_rows = contexts.shape[0]
    if not 1 <= neighbours < num_rows:
        raise ValueError(f"neighbours must be in [1, N - 1] = [1, {num_rows - 1}], got {neighbours}")
    distances = squared_distances(contexts, contexts)
    distances.fill_diagonal_(float("inf"))
    return distances.topk(neighbours, dim=1, largest=False).indices


def neighbour_permutations(contexts: torch.Tensor, num_codebooks: int, neighbours: int,
                           generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
    """``[K, N]`` row indices: row 0 the identity (codebook 1 stays), row j a neighbour of each row,
    drawn independently per codebook and row among its ``neighbours`` nearest contexts."""
    contexts = contexts.detach()
    near = neighbour_indices(contexts, neighbours)
    num_rows = contexts.shape[0]
    draw_device = generator.device if generator is not None else contexts.device
    picks = torch.randint(neighbours, (num_codebooks - 1, num_rows), generator=generator, device=draw_device)
    rows = torch.arange(num_rows, device=contexts.device)
    swapped = near[rows, picks.to(contexts.device)]  # [K - 1, N]
    return torch.cat([rows[None], swapped])


def conditional_product_mmd(samples: torch.Tensor, contexts: torch.Tensor, bandwidths: torch.Tensor,
                            neighbours: int, generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
    """MMD² between the joint rows ``samples`` ``[N, K, D]`` and their conditional product given
    ``contexts`` ``[N, H]`` (see the module docstring); differentiable w.r.t. ``samples``.

    Args:
        samples: Aligned, standardised rows.
        contexts: One context per row (no gradient is taken through it).
        bandwidths: ``[A]`` absolute bandwidths of the sum-of-Gaussians kernel.
        neighbours: Rows each row may take a codebook's vector from.
        generator: Drives the draws among neighbours.
    """
    num_rows, num_codebooks, dim = samples.shape
    if contexts.shape[0] != num_rows:
        raise ValueError(f"{contexts.shape[0]} contexts for {num_rows} rows")
    perms = neighbour_permutations(contexts, num_codebooks, neighbours, generator)
    # Every row, joint or product, is made of blocks of the joint rows, so one N x N distance matrix per
    # codebook gives all three blocks by gathering: about 3x faster than distances between 2N full rows.
    per_codebook = [squared_distances(samples[:, k], samples[:, k]) for k in range(num_codebooks)]
    joint_joint = torch.stack(per_codebook).sum(0)
    joint_product = torch.stack([d[:, p] for d, p in zip(per_codebook, perms)]).sum(0)
    product_product = torch.stack([d[p][:, p] for d, p in zip(per_codebook, perms)]).sum(0)
    bandwidths = bandwidths.to(samples)

    def kernel(distances: torch.Tensor) -> torch.Tensor:
        total = torch.zeros_like(distances)
        for bandwidth in bandwidths:
            total = total + torch.exp(-distances / (2 * bandwidth))
        return total
    eye = torch.eye(num_rows, dtype=torch.bool, device=samples.device)
    product_shared = eye | (perms[1:, :, None] == perms[1:, None, :]).any(0)
    return (masked_mean(kernel(joint_joint), eye) + masked_mean(kernel(product_product), product_shared)
            - 2 * masked_mean(kernel(joint_product), shared_block_pairs(perms)))


def masked_mean(matrix: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
    """Mean of ``matrix`` over the entries not ``excluded``."""
    kept = (~excluded).sum()
    if kept == 0:
        raise ValueError("every pair is excluded: too few rows or neighbours")
    return matrix.masked_fill(excluded, 0).sum() / kept


def conditional_product_independence(streams: torch.Tensor, predictor: CausalPredictor, delays: tp.Sequence[int],
                                     bandwidths: tp.Sequence[float], bandwidth_scale: str, neighbours: int,
                                     clamp: bool = True,
                                     generator: tp.Optional[torch.Generator] = None) -> MMDIndependence:
    """The loss with the conditional product, on ``streams`` ``[B, K, D, T]``: aligned by ``delays``,
    standardised per feature over the B·T' steps (as for the innovations), each step's context
    g's state (:meth:`CausalPredictor.context`, no gradient), bandwidths scaled as the loss's."""
    aligned = align_streams(streams, delays).float()
    with torch.autocast(device_type=aligned.device.type, enabled=False):
        standardized = standardize_steps(aligned)
        batch, num_codebooks, dim, steps = standardized.shape
        with torch.no_grad():
            contexts = predictor.context(standardized).permute(0, 2, 1).reshape(batch * steps, -1)
        samples = standardized.permute(0, 3, 1, 2).reshape(batch * steps, num_codebooks, dim)
        scale = BANDWIDTH_SCALES[bandwidth_scale](samples)
        absolute = torch.as_tensor(bandwidths, dtype=samples.dtype, device=samples.device) * scale
        estimate = conditional_product_mmd(samples, contexts, absolute, neighbours, generator)
    clamped = bool(clamp) and bool(estimate.detach() < 0)
    return MMDIndependence(loss=estimate.clamp_min(0) if clamp else estimate, estimate=estimate,
                           num_rows=batch * steps, dim=num_codebooks * dim, clamped=clamped)
