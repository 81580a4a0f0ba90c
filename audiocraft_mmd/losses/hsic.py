"""Exact estimator of the independence MMD as a d-variable HSIC, computed in row blocks.

A Gaussian kernel on the concatenated vector is the product of per-codebook Gaussian kernels,
``k_a(x, x') = Π_k k_a^k(x_k, x'_k)`` with ``k_a^k(u, v) = exp(-‖u - v‖² / (2a))``, so the MMD² between
the joint law P and the product of its marginals has a closed form in the K per-codebook Gram matrices
(the d-variable HSIC)::

    MMD² = Σ_a  E k_a(x, x')  -  2 E_x Π_k E_{x'} k_a^k(x_k, x'_k)  +  Π_k E k_a^k(x_k, x'_k)
              (joint term J)      (cross term C)                      (product term P)

No permutation sample is drawn: the estimate is a deterministic function of the rows. With
``K^k`` the Gram matrices of codebook k (zero diagonal), ``s_i^k = Σ_{j≠i} K^k_ij``:

* ``J = 1/(N(N-1)) Σ_{i≠j} Π_k K^k_ij`` (U-statistic),
* ``C = 1/N Σ_i Π_k s_i^k / (N-1)`` (leave-one-out row means),
* ``P = Π_k Σ_i s_i^k / (N(N-1))`` (per-codebook off-diagonal means).

**Bias.** If the K codebook blocks are mutually independent and the rows exchangeable (i.i.d. rows,
also after per-feature or per-codebook standardisation, whose statistics only mix rows of the same
codebook), ``E[J] = E[C] = E[P] = Π_k E[K^k_12]``: the estimate has mean exactly 0, as the
population value. Under dependence it is biased by O(K²/N): in C, the K-tuples of leave-one-out
rows with a repeated index (a fraction ≈ K(K-1)/(2N)) and, in P, the shared rows across codebooks
evaluate the joint law instead of the product of marginals. That bias vanishes with the dependence,
unlike the O(K/N) bias of the paper's permutation estimator, which is present (and negative) under
independence too.

**Cost.** Per block of rows: K matrix products ``[b, D] x [D, N]`` give the per-codebook squared
distances; each bandwidth's kernels come from one ``exp`` or, when a larger bandwidth is a
power-of-2 multiple (``a' = 2^m a``), from m squarings of that kernel (``exp(-d/(2a)) =
exp(-d/(2a'))^(2^m)``), cheaper than ``exp``; the joint kernel (their product) comes from the summed
distance. Kernel values are clamped a little above the subnormal range (about 1e-34 in float32),
where the CPU's arithmetic is many times slower; they weigh nothing in the sums. Only row sums
leave the block. The backward pass is analytic and recomputes the
blocks (:class:`_BlockedHSIC`), so peak memory is O(K·N·block_size) forward and backward: no N x N
matrix is ever held. Time is O(N²·K·(D + A)).
"""

from __future__ import annotations

import math
import typing as tp

import torch

from .mmd_estimators import check_samples, register_estimator

# Rows per block: a few [K, block, N] float buffers are alive at once (about 24 MB each at N = 11.8k,
# K = 4), large enough for efficient matrix products.
DEFAULT_BLOCK_SIZE = 128
# Longest squaring chain used to derive a kernel from a larger bandwidth's (2^6 = 64x): beyond it the
# float32 relative error of repeated squaring (about 2^m ulps) is no longer negligible.
MAX_SQUARINGS = 6


def check_block_size(block_size: int) -> int:
    """Validates ``block_size`` (a positive int) and returns it."""
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size <= 0:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    return block_size


def kernel_schedule(bandwidths: tp.Sequence[float]) -> tp.List[tp.Tuple[int, tp.Optional[int], int]]:
    """Order in which to compute the per-bandwidth kernels, reusing ``exp`` through squarings.

    Args:
        bandwidths: The A positive bandwidths.

    Returns:
        A list of ``(index, source, squarings)`` covering every index once, largest bandwidth first.
        ``source`` is None when the kernel needs an ``exp``; otherwise the kernel of bandwidth
        ``index`` is that of ``source`` squared ``squarings`` times (``bandwidths[source] ==
        2**squarings * bandwidths[index]`` up to rounding).
    """
    order = sorted(range(len(bandwidths)), key=lambda i: -bandwidths[i])
    schedule: tp.List[tp.Tuple[int, tp.Optional[int], int]] = []
    for position, index in enumerate(order):
        best: tp.Tuple[tp.Optional[int], int] = (None, 0)
        for source, _, _ in schedule:
            exponent = math.log2(bandwidths[source] / bandwidths[index])
            squarings = round(exponent)
            if 1 <= squarings <= MAX_SQUARINGS and abs(exponent - squarings) < 1e-9:
                if best[0] is None or squarings < best[1]:
                    best = (source, squarings)
        schedule.append((index, best[0], best[1]))
    return schedule


def codebook_distances(x: torch.Tensor, y: torch.Tensor, x_sq: tp.Optional[torch.Tensor] = None,
                       y_sq: tp.Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-codebook squared distances ``[K, n, m]`` between ``x [K, n, D]`` and ``y [K, m, D]``.

    ``x_sq``, ``y_sq``: the rows' squared norms ``[K, n]``, ``[K, m]`` when already known.
    """
    x_sq = x.pow(2).sum(-1) if x_sq is None else x_sq
    y_sq = y.pow(2).sum(-1) if y_sq is None else y_sq
    dists = torch.baddbmm(x_sq[:, :, None] + y_sq[:, None, :], x, y.transpose(1, 2), alpha=-2)
    return dists.clamp_min_(0)  # the expansion can round slightly below 0


def kernel_exponent_floor(dtype: torch.dtype) -> float:
    """The lowest exponent given to ``exp``: kernel values stay a little above the smallest normal float.

    exp() near underflow and products that underflow into subnormals run on a slow path of the CPU
    (measured: a squaring that underflows is 75x slower; 5x slower overall with the paper's
    bandwidths at 512 dimensions), and values this small (< 1e-34 in float32) weigh nothing in the sums.
    """
    return math.log(torch.finfo(dtype).tiny) + 8


def _block_distances(x: torch.Tensor, sq_norms: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Per-codebook squared distances ``[K, stop - start, N]`` between rows start..stop and all rows."""
    return codebook_distances(x[:, start:stop], x, sq_norms[:, start:stop], sq_norms)


def _block_kernels(dists: torch.Tensor, bandwidths: tp.Sequence[float], start: int
                   ) -> tp.Iterator[tp.Tuple[int, torch.Tensor, torch.Tensor]]:
    """Yields ``(a, kernels [K, b, N], joint [b, N])`` for every bandwidth index a, diagonals (i == j) zeroed.

    ``kernels`` are the per-codebook kernels, ``joint`` the kernel on the concatenated vectors (their
    product, computed from the summed distance: one [b, N] pass instead of K). Both follow the
    :func:`kernel_schedule` order and are kept only while a later bandwidth squares them.
    """
    schedule = kernel_schedule(bandwidths)
    last_use = {index: max([pos for pos, (_, source, _) in enumerate(schedule) if source == index], default=-1)
                for index, _, _ in schedule}
    # Kernel values are kept above the subnormal range (see kernel_exponent_floor).
    tiny = torch.finfo(dists.dtype).tiny
    min_exponent, min_squared = kernel_exponent_floor(dists.dtype), math.sqrt(tiny) * 16
    joint_dists = dists.sum(0)
    kept: tp.Dict[int, tp.Tuple[torch.Tensor, torch.Tensor]] = {}
    for position, (index, source, squarings) in enumerate(schedule):
        if source is None:
            factor = -0.5 / bandwidths[index]
            kernels = (dists * factor).clamp_min_(min_exponent).exp_()
            joint = (joint_dists * factor).clamp_min_(min_exponent).exp_()
            kernels.diagonal(offset=start, dim1=1, dim2=2).zero_()  # leave out the pairs i == j
            joint.diagonal(offset=start).zero_()
        else:
            kernels, joint = kept[source]
            for _ in range(squarings):
                kernels = kernels.clamp_min(min_squared).square_()
                joint = joint.clamp_min(min_squared).square_()
            kernels.diagonal(offset=start, dim1=1, dim2=2).zero_()  # the clamp lifted the diagonal
            joint.diagonal(offset=start).zero_()
        if last_use[index] > position:
            kept[index] = (kernels, joint)
        for done in [i for i in kept if last_use[i] <= position]:
            del kept[done]
        yield index, kernels, joint


def _exclusive_products(values: torch.Tensor, dim: int) -> torch.Tensor:
    """``out[..., k, ...] = Π_{l≠k} values[..., l, ...]`` along ``dim`` (no division: values may be 0)."""
    size = values.shape[dim]
    return torch.stack([values.index_select(dim, torch.tensor([j for j in range(size) if j != k],
                                                              device=values.device)).prod(dim)
                        for k in range(size)], dim=dim)


class _BlockedHSIC(torch.autograd.Function):
    """The estimate and its analytic gradient, both computed block by block (see the module docstring).

    Gradient: with ``c_i^k = Π_{l≠k} s_i^l/(N-1)`` and ``q^k = Π_{l≠k} p^l``, the derivative of the
    estimate with respect to the squared distance ``d^k_ij`` (both orders of the pair together) is
    ``-1/(a N (N-1)) · (Π_l K^l_ij - K^k_ij (c_i^k + c_j^k - q^k))`` for each bandwidth a, and
    ``∂d^k_ij/∂x_i^k = 2 (x_i^k - x_j^k)``.
    """

    @staticmethod
    def forward(ctx, samples: torch.Tensor, bandwidths: torch.Tensor, block_size: int) -> torch.Tensor:
        n, num_codebooks, _ = samples.shape
        values = [float(a) for a in bandwidths]
        x = samples.detach().transpose(0, 1).contiguous()  # [K, N, D]: one matrix product per codebook
        sq_norms = x.pow(2).sum(-1)
        accumulate = torch.float64  # the three terms nearly cancel: combine them in double precision
        joint_sums = torch.zeros(len(values), dtype=accumulate, device=samples.device)
        row_sums = torch.zeros(len(values), num_codebooks, n, dtype=accumulate, device=samples.device)
        for start in range(0, n, block_size):
            stop = min(start + block_size, n)
            dists = _block_distances(x, sq_norms, start, stop)
            for a, kernels, joint in _block_kernels(dists, values, start):
                joint_sums[a] += joint.sum().to(accumulate)
                row_sums[a, :, start:stop] = kernels.sum(-1)  # float32 pairwise sums suffice
        pairs = n * (n - 1)
        loo_means = row_sums / (n - 1)                   # [A, K, N] leave-one-out row means
        codebook_means = row_sums.sum(-1) / pairs        # [A, K] off-diagonal means
        joint = joint_sums / pairs
        cross = loo_means.prod(1).mean(-1)
        product = codebook_means.prod(1)
        estimate = (joint - 2 * cross + product).sum()

        ctx.block_size = block_size
        ctx.values = values
        ctx.save_for_backward(samples, bandwidths,
                              _exclusive_products(loo_means, 1).to(samples.dtype),      # c [A, K, N]
                              _exclusive_products(codebook_means, 1).to(samples.dtype))  # q [A, K]
        return estimate.to(samples.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        samples, bandwidths, cross_weights, product_weights = ctx.saved_tensors
        values, block_size = ctx.values, ctx.block_size
        n = samples.shape[0]
        x = samples.detach().transpose(0, 1).contiguous()
        sq_norms = x.pow(2).sum(-1)
        want_samples, want_bandwidths = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = torch.zeros_like(x) if want_samples else None
        grad_bandwidths = torch.zeros(len(values), dtype=torch.float64, device=samples.device)
        pairs = n * (n - 1)
        for start in range(0, n, block_size):
            stop = min(start + block_size, n)
            dists = _block_distances(x, sq_norms, start, stop)
            # ∂estimate/∂d^k_ij summed over bandwidths: Σ_a scale_a (joint_a + K_a (q_a - c_i - c_j)), with the
            # joint part (the same for every codebook) accumulated on [b, N] and added once.
            weights = torch.zeros_like(dists)
            joint_weights = torch.zeros_like(dists[0])
            joint_dists = dists.sum(0) if want_bandwidths else None
            for a, kernels, joint in _block_kernels(dists, values, start):
                c = cross_weights[a]
                scale = -1.0 / (values[a] * pairs)
                # scale · K (q - c_i - c_j), built in one buffer (addcmul_ with a scalar is slower here).
                term = (scale * (product_weights[a, :, None] - c[:, start:stop]))[:, :, None] - scale * c[:, None, :]
                term.mul_(kernels)
                weights.add_(term)
                joint_weights.add_(joint, alpha=scale)
                # dk/da = -(d/a) dk/dd; each pair is visited twice (i, j) and (j, i).
                if joint_dists is not None:  # want_bandwidths
                    pair_sum = (term * dists).sum(dtype=torch.float64) + scale * (joint * joint_dists).sum(
                        dtype=torch.float64)
                    grad_bandwidths[a] -= pair_sum / (2 * values[a])
            weights.add_(joint_weights)
            if grad_x is not None:  # want_samples
                # Σ_j w_ij · 2 (x_i - x_j) for the rows of this block, for every codebook at once.
                block = x[:, start:stop]
                grad_x[:, start:stop] = 2 * (weights.sum(-1, keepdim=True) * block - torch.bmm(weights, x))
        grad_samples = (grad_x * grad_output).transpose(0, 1) if grad_x is not None else None
        grad_bw = (grad_bandwidths * grad_output).to(bandwidths.dtype) if want_bandwidths else None
        return grad_samples, grad_bw, None


def hsic_mmd(samples: torch.Tensor, bandwidths: torch.Tensor, generator: tp.Optional[torch.Generator] = None,
             block_size: int = DEFAULT_BLOCK_SIZE) -> torch.Tensor:
    """Exact MMD² between the joint law of the K codebook vectors and the product of its marginals.

    Args:
        samples: ``[N, K, D]`` rows, N >= 2.
        bandwidths: ``[A]`` absolute bandwidths ``a`` of ``Σ_a exp(-‖u - v‖² / (2a))``; they receive a
            gradient if they require one.
        generator: Unused (the estimate is deterministic); part of the estimator signature.
        block_size: Rows per block; peak memory grows as ``K · N · block_size``.

    Returns:
        The unclamped scalar estimate, in the dtype of ``samples``, differentiable with respect to
        ``samples`` (and ``bandwidths``). Mean exactly 0 when the codebooks are independent.

    Raises:
        ValueError: On bad shapes or a non-positive ``block_size``.
    """
    check_samples(samples, bandwidths)
    check_block_size(block_size)
    if not samples.is_floating_point():
        raise ValueError(f"samples must be floating point, got dtype {samples.dtype}")
    bandwidths = bandwidths.to(device=samples.device, dtype=samples.dtype)
    if not bool((bandwidths > 0).all()):
        raise ValueError(f"bandwidths must be > 0, got {bandwidths.tolist()}")
    return _BlockedHSIC.apply(samples, bandwidths, block_size)


register_estimator("hsic")(hsic_mmd)
