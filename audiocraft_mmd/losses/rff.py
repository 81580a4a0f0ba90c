"""Linear-time estimator of the independence MMD with random Fourier features.

The Gaussian kernel ``exp(-‖u - v‖² / (2a))`` is ``E_ω cos(ω·(u - v))`` with ``ω ~ N(0, I / a)``, so
``MMD²(P, Q) = E_ω |φ_P(ω) - φ_Q(ω)|²`` (φ: characteristic functions). For Q the product of the
marginals the characteristic function factorises, ``φ_Q(ω) = Π_k φ_k(ω_k)``, and every frequency
ω = (ω_1, ..., ω_K) draws its K blocks independently. With ``z_i^k = exp(i ω_k·x_i^k)``,
``S^k = Σ_i z_i^k`` and ``z_i = Π_k z_i^k``, each frequency contributes the U-statistic form of
``|φ_joint - Π_k φ_k|²``, term by term the same as the exact estimator (:mod:`.hsic`) with the
kernel ``Π_k z^k(u) conj(z^k(v))``:

* joint ``(|Σ_i z_i|² - N) / (N(N-1))``,
* cross ``Re 1/N Σ_i Π_k z_i^k conj(S^k - z_i^k) / (N-1)`` (leave-one-out means),
* product ``Π_k (|S^k|² - N) / (N(N-1))``.

Averaged over the frequencies the kernel is the Gaussian one in expectation, and each term is
linear in, or a product over codebooks of, independent per-codebook frequencies: given the rows the
estimate is an unbiased estimate of the exact (:mod:`.hsic`) one, hence of mean exactly 0 under
independence; its extra variance shrinks as 1 / num_features. Cost O(N·K·D·R) for R features,
memory O(N·K·chunk_size): feature chunks, and bandwidths within a chunk, are recomputed in the
backward pass (nested gradient checkpointing). The frequency base is shared by the bandwidths
(``ω = ε / √a``), so the K·D x R projection is computed once for all of them.
"""

from __future__ import annotations

import functools
import typing as tp

import torch
from torch.utils.checkpoint import checkpoint

from .mmd_estimators import check_samples, register_estimator

DEFAULT_NUM_FEATURES = 1024
# Features per checkpointed chunk: about ten [N, K, chunk] buffers are alive at once (24 MB each at
# N = 11.8k, K = 4).
DEFAULT_CHUNK_SIZE = 128


def _check_positive_int(value: int, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{argument} must be a positive int, got {value!r}")
    return value


def _bandwidth_statistic(base_phases: torch.Tensor, inv_scale: torch.Tensor) -> torch.Tensor:
    """Sum over the chunk's frequencies of the per-frequency statistic, for one bandwidth.

    Args:
        base_phases: ``[N, K, F]`` phases ``ε_k·x_i^k`` of the standard normal frequencies ε.
        inv_scale: ``1 / √a``: the frequencies of bandwidth a are ``ω = ε / √a``.
    """
    n, num_codebooks, _ = base_phases.shape
    pairs = n * (n - 1)
    phases = base_phases * inv_scale
    cos, sin = phases.cos(), phases.sin()
    sum_cos, sum_sin = cos.sum(0), sin.sum(0)                          # S^k: [K, F]
    joint_phase = phases.sum(1)                                         # z_i = Π_k z_i^k: [N, F]
    joint = (joint_phase.cos().sum(0).pow(2) + joint_phase.sin().sum(0).pow(2) - n) / pairs
    product = ((sum_cos.pow(2) + sum_sin.pow(2) - n) / pairs).prod(0)
    # z_i^k conj(S^k - z_i^k) / (N - 1) = (z_i^k conj(S^k) - 1) / (N - 1), multiplied over k.
    real = (cos * sum_cos + sin * sum_sin - 1) / (n - 1)
    imag = (sin * sum_cos - cos * sum_sin) / (n - 1)
    prod_real, prod_imag = real[:, 0], imag[:, 0]
    for k in range(1, num_codebooks):
        prod_real, prod_imag = (prod_real * real[:, k] - prod_imag * imag[:, k],
                                prod_real * imag[:, k] + prod_imag * real[:, k])
    cross = prod_real.mean(0)
    return (joint - 2 * cross + product).sum()


def _maybe_checkpoint(fn: tp.Callable[..., torch.Tensor], *inputs: torch.Tensor) -> torch.Tensor:
    """``fn(*inputs)``, recomputed in the backward pass instead of stored when a gradient is needed."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        return checkpoint(fn, *inputs, use_reentrant=False)
    return fn(*inputs)


def _chunk_statistic(samples: torch.Tensor, base_frequencies: torch.Tensor, inv_scales: torch.Tensor) -> torch.Tensor:
    """Sum over the chunk's frequencies and the bandwidths of the per-frequency statistic.

    Args:
        samples: ``[N, K, D]`` rows.
        base_frequencies: ``[K, D, F]`` standard normal frequencies ε.
        inv_scales: ``[A]`` values ``1 / √a``: frequencies ``ω = ε / √a`` for bandwidth a.
    """
    base_phases = torch.einsum("nkd,kdf->nkf", samples, base_frequencies)  # [N, K, F], shared by bandwidths
    # One checkpoint per bandwidth inside the chunk's: the backward pass holds one bandwidth's buffers.
    # A tensor: inv_scales is not empty (check_samples).
    return tp.cast(torch.Tensor, sum(_maybe_checkpoint(_bandwidth_statistic, base_phases, inv_scale)
                                     for inv_scale in inv_scales))


def rff_mmd(samples: torch.Tensor, bandwidths: torch.Tensor, generator: tp.Optional[torch.Generator] = None,
            num_features: int = DEFAULT_NUM_FEATURES, chunk_size: int = DEFAULT_CHUNK_SIZE) -> torch.Tensor:
    """Random-feature estimate of MMD² between the joint law of the codebooks and the product of marginals.

    Args:
        samples: ``[N, K, D]`` rows, N >= 2.
        bandwidths: ``[A]`` absolute bandwidths ``a`` of ``Σ_a exp(-‖u - v‖² / (2a))``.
        generator: Draws the frequencies (fresh ones at every call); None uses torch's global RNG.
            They are drawn on the generator's device, then moved to that of ``samples``.
        num_features: R, frequencies per bandwidth (shared base across bandwidths).
        chunk_size: Frequencies per gradient-checkpointed chunk; peak memory grows as ``N·K·chunk_size``.

    Returns:
        The unclamped scalar estimate, differentiable with respect to ``samples``.

    Raises:
        ValueError: On bad shapes or a non-positive ``num_features`` / ``chunk_size``.
    """
    check_samples(samples, bandwidths)
    _check_positive_int(num_features, "num_features")
    _check_positive_int(chunk_size, "chunk_size")
    _, num_codebooks, dim = samples.shape
    draw_device = generator.device if generator is not None else samples.device
    base = torch.randn(num_codebooks, dim, num_features, generator=generator, device=draw_device,
                       dtype=samples.dtype).to(samples.device)
    inv_scales = bandwidths.to(samples).rsqrt()
    total = samples.new_zeros(())
    for start in range(0, num_features, chunk_size):
        chunk = base[..., start:start + chunk_size]
        total = total + _maybe_checkpoint(_chunk_statistic, samples, chunk, inv_scales)
    return total / num_features


def _register(name: str, num_features: int) -> None:
    fn = functools.partial(rff_mmd, num_features=num_features)
    functools.update_wrapper(fn, rff_mmd)
    register_estimator(name)(fn)


# "rff" is the default size; the suffixed names trade time for accuracy (see docs/research/PERFORMANCE.md).
_register("rff", DEFAULT_NUM_FEATURES)
for _features in (256, 4096):
    _register(f"rff_{_features}", _features)
