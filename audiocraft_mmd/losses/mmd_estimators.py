"""Estimators of MMD² between the joint law of K codebook vectors and the product of its marginals.

An estimator is a function registered under a name with :func:`register_estimator`::

    fn(samples: Tensor[N, K, D], bandwidths: Tensor[A], generator: Optional[torch.Generator]) -> Tensor[]

``samples`` holds N rows, each a tuple of K vectors of size D (already aligned and standardised);
``bandwidths`` holds the absolute values ``a`` of the kernel ``k(u, v) = Σ_a exp(-‖u - v‖² / (2a))``
on the concatenated ``K·D`` vectors (any scaling already applied); ``generator`` drives whatever
randomness the estimator needs. The return value is the unclamped scalar estimate, differentiable
with respect to ``samples``. The loss (:mod:`audiocraft_mmd.losses.mmd`) only knows estimators by
name, so new ones plug in without touching it. Registered: ``permutation``, ``permutation_debiased``
(here), ``hsic`` (:mod:`.hsic`, exact, the default), ``rff``, ``rff_256``, ``rff_4096`` (:mod:`.rff`,
random Fourier features).
"""

from __future__ import annotations

import typing as tp

import torch

from ..registry import Registry

EstimatorFn = tp.Callable[[torch.Tensor, torch.Tensor, tp.Optional[torch.Generator]], torch.Tensor]

ESTIMATORS = Registry("estimator")
register_estimator = ESTIMATORS.register
get_estimator = ESTIMATORS.lookup


def check_samples(samples: torch.Tensor, bandwidths: torch.Tensor) -> None:
    """Checks the common estimator inputs: samples ``[N >= 2, K, D]`` and a non-empty 1-D bandwidth tensor."""
    if samples.dim() != 3:
        raise ValueError(f"samples must be [N, K, D], got shape {tuple(samples.shape)}")
    if samples.shape[0] < 2:
        raise ValueError(f"samples must have at least N = 2 rows for the U-statistic, got N = {samples.shape[0]}")
    if bandwidths.dim() != 1 or bandwidths.numel() == 0:
        raise ValueError(f"bandwidths must be a non-empty 1-D tensor, got shape {tuple(bandwidths.shape)}")


def permutation_indices(num_rows: int, num_codebooks: int, generator: tp.Optional[torch.Generator] = None,
                        device: tp.Optional[torch.device] = None) -> torch.Tensor:
    """Draws one independent permutation of the rows per codebook.

    Args:
        num_rows: N, the number of rows to permute.
        num_codebooks: K, one permutation per codebook.
        generator: Source of randomness. The permutations are drawn on its device (so a CPU generator
            works with CUDA samples) and then moved to ``device``.
        device: Device of the returned indices (default: the generator's, else CPU).

    Returns:
        A ``[K, N]`` long tensor; row k is the permutation applied to codebook k.
    """
    draw_device = generator.device if generator is not None else device
    perms = torch.stack([torch.randperm(num_rows, generator=generator, device=draw_device)
                         for _ in range(num_codebooks)])
    return perms.to(device) if device is not None else perms


def product_of_marginals(samples: torch.Tensor, perms: torch.Tensor) -> torch.Tensor:
    """Rows of the product of the marginals: codebook k of row i is codebook k of row ``perms[k, i]``.

    Args:
        samples: ``[N, K, D]`` joint rows.
        perms: ``[K, N]`` permutations, e.g. from :func:`permutation_indices`.

    Returns:
        ``[N, K, D]``; each codebook's set of vectors is unchanged, but which vectors share a row is
        shuffled independently per codebook, which breaks the dependence between codebooks.
    """
    codebooks = torch.arange(samples.shape[1], device=samples.device)
    return samples[perms.t(), codebooks]  # [N, K] index pairs (perms[k, i], k) -> [N, K, D]


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances ``[N, M]`` between rows of ``x`` ``[N, F]`` and ``y`` ``[M, F]``.

    One matrix product (fast, differentiable everywhere, unlike the norm's gradient at 0); rounding
    can make the expansion slightly negative, hence the clamp.
    """
    x_norms = x.pow(2).sum(dim=1, keepdim=True)
    y_norms = y.pow(2).sum(dim=1, keepdim=True)
    return (x_norms + y_norms.t() - 2 * x @ y.t()).clamp_min(0)


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidths: torch.Tensor,
                  cross_exclude: tp.Optional[torch.Tensor] = None) -> torch.Tensor:
    """MMD² between two samples of the same size, sum-of-Gaussians kernel.

    Within-sample terms are U-statistics (diagonal removed, divided by N(N-1)); the cross term is the
    plain mean over all N² pairs, or over the pairs not excluded by ``cross_exclude``.

    Args:
        x: ``[N, F]`` first sample.
        y: ``[N, F]`` second sample.
        bandwidths: ``[A]`` absolute bandwidths ``a`` of ``Σ_a exp(-‖u - v‖² / (2a))``.
        cross_exclude: Optional ``[N, N]`` bool mask; True at ``[i, j]`` leaves the pair
            ``(x_i, y_j)`` out of the cross term.

    Returns:
        The scalar estimate (may be negative).
    """
    n = x.shape[0]
    # One [2N, 2N] distance matrix covers the three blocks XX, YY and XY with a single product.
    both = torch.cat([x, y])
    dists = squared_distances(both, both)
    kernel = torch.zeros_like(dists)
    for a in bandwidths:  # a loop, not an [2N, 2N, A] broadcast: keeps peak memory at a few N² matrices
        kernel = kernel + torch.exp(-dists / (2 * a))
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    off_diagonal = n * (n - 1)
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / off_diagonal
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / off_diagonal
    if cross_exclude is None:
        cross = k_xy.mean()
    else:
        kept = (~cross_exclude).sum()
        if kept == 0:
            raise ValueError("cross_exclude leaves no pair in the cross term")
        cross = k_xy.masked_fill(cross_exclude, 0).sum() / kept
    return within_x + within_y - 2 * cross


def shared_block_pairs(perms: torch.Tensor) -> torch.Tensor:
    """``[N, N]`` bool mask, True at ``[i, j]`` when permuted row j holds a block of joint row i.

    With ``perms`` ``[K, N]`` from :func:`permutation_indices`, codebook k of permuted row j is
    codebook k of joint row ``perms[k, j]``.
    """
    num_codebooks, num_rows = perms.shape
    mask = torch.zeros(num_rows, num_rows, dtype=torch.bool, device=perms.device)
    columns = torch.arange(num_rows, device=perms.device).repeat(num_codebooks)
    mask[perms.reshape(-1), columns] = True
    return mask


def _permutation_mmd(samples: torch.Tensor, bandwidths: torch.Tensor, generator: tp.Optional[torch.Generator],
                     exclude_shared: bool) -> torch.Tensor:
    check_samples(samples, bandwidths)
    n, k, d = samples.shape
    if exclude_shared and n <= k:  # each permuted row shares a block with up to K joint rows
        raise ValueError(f"estimator 'permutation_debiased' needs more rows than codebooks, got N = {n} rows "
                         f"for K = {k} codebooks")
    perms = permutation_indices(n, k, generator, samples.device)
    joint = samples.reshape(n, k * d)
    marginals = product_of_marginals(samples, perms).reshape(n, k * d)
    exclude = shared_block_pairs(perms) if exclude_shared else None
    return mmd2_unbiased(joint, marginals, bandwidths.to(samples), cross_exclude=exclude)


@register_estimator("permutation")
def permutation_estimator(samples: torch.Tensor, bandwidths: torch.Tensor,
                          generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
    """The paper's estimator (Algorithm 1): joint rows against rows permuted independently per codebook.

    The product-of-marginals sample is built from the joint one, so the two are not independent: in
    the cross term, about K·N of the N² pairs share a block (distance 0 there), which biases the
    estimate downwards by O(K/N) — negative under independence, and often larger than the signal of
    a moderate dependence at a few hundred rows. The clamp at 0 then zeroes the loss; see
    ``"permutation_debiased"``.

    Args:
        samples: ``[N, K, D]`` rows, N >= 2.
        bandwidths: ``[A]`` absolute kernel bandwidths.
        generator: Drives the K row permutations.

    Returns:
        The unclamped scalar MMD² estimate, normalised by the number of rows N.
    """
    return _permutation_mmd(samples, bandwidths, generator, exclude_shared=False)


@register_estimator("permutation_debiased")
def permutation_debiased_estimator(samples: torch.Tensor, bandwidths: torch.Tensor,
                                   generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
    """The permutation estimator with the block-sharing pairs left out of the cross term.

    Dropping the pairs ``(x_i, y_j)`` where permuted row j holds a block of joint row i removes the
    O(K/N) bias of ``"permutation"``: under independence every remaining pair, like the within-sample
    pairs, is two independent draws of the same law, so the expectation is exactly 0 and a clamped
    loss stays active when codebooks are dependent. Same inputs and output as
    :func:`permutation_estimator`.
    """
    return _permutation_mmd(samples, bandwidths, generator, exclude_shared=True)
