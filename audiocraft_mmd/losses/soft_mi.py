"""A penalty on the codes themselves (``mmd.estimator=soft_mi``): the mean pairwise mutual information of
soft code assignments, differentiable in the encoder output.

The kernel statistic on quantized vectors was measured to come apart from the codes' dependence (λ = 100
cut it 7-fold while the codes' MI did not move, docs/research/RESULTS.md). This loss pushes on the quantity the
dependence command measures. For stage k with input z (the residual entering the stage) and codebook
entries e_{k,c} (detached: the gradient reaches the encoder only, as the kernel loss's)::

    p_k(c | z) = softmax_c(-‖z - e_{k,c}‖² / τ_k),    τ_k = temperature · mean ‖z - e_{k,code(z)}‖²

(τ relative to the stage's own quantization error, detached, so one temperature fits every stage and
scale). Rows are aligned by the LM pattern's delays and merged as the kernel loss's (clip after clip).
For each pair i < j the joint of the soft codes is ``P_ij = mean_n p_i(n) ⊗ p_j(n)``, with marginals its
row and column sums, and its plug-in MI in bits ``Σ P log2 P / (p̄_i p̄_j)``. As τ → 0 the assignments
become the hard codes and this is the hard codes' plug-in MI (tests/test_soft_mi.py).

**Bias.** A plug-in MI over C² cells from N rows is biased upwards (about (cells - 1) / (2 N ln 2)
bits for hard codes), and minimising it alone would reward fewer occupied cells, i.e. collapse. The
estimate subtracts the same plug-in MI of a *null pairing*, with codebook j's rows permuted (``pooled``:
across all rows; ``clip``: within each clip, so that dependence through what the clip is cancels too),
which has the same marginals and the same sparsity. Both terms carry gradient; under independence the
estimate is centred on 0 up to the null's own noise.
"""

from __future__ import annotations

import math
import typing as tp

import torch
from torch import nn

from .mmd import MMDIndependence, _check_choice, _check_delays, align_streams

# Guards log(0) in empty cells and τ for inputs that sit exactly on their code (e.g. silence).
EPS = 1e-12
# Which rows the null pairing permutes: all (pooled) or each clip's (clip); no chunked null yet.
SOFT_MI_PRODUCTS = ("pooled", "clip")


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0 \
            or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite float > 0, got {temperature!r}")
    return float(temperature)


def soft_assignments(inputs: torch.Tensor, codebooks: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft codes ``[B, K, C, T]`` of stage inputs ``[B, K, D, T]`` on codebooks ``[K, C, D]`` (detached).

    Raises:
        ValueError: On shapes that do not match or a temperature that is not > 0.
    """
    temperature = _check_temperature(temperature)
    if inputs.dim() != 4 or codebooks.dim() != 3 or inputs.shape[1] != codebooks.shape[0] \
            or inputs.shape[2] != codebooks.shape[2]:
        raise ValueError(f"inputs [B, K, D, T] and codebooks [K, C, D] do not match: {tuple(inputs.shape)} and "
                         f"{tuple(codebooks.shape)}")
    z = inputs.permute(1, 0, 3, 2).reshape(inputs.shape[1], -1, inputs.shape[2])  # [K, B·T, D]
    entries = codebooks.detach().to(z.dtype)
    dists = (z.pow(2).sum(-1, keepdim=True) + entries.pow(2).sum(-1)[:, None, :]
             - 2 * torch.bmm(z, entries.transpose(1, 2))).clamp_min(0)          # [K, B·T, C]
    tau = temperature * dists.detach().min(-1).values.mean(-1).clamp_min(EPS)  # [K]
    probs = torch.softmax(-dists / tau[:, None, None], dim=-1)
    batch, _, _, frames = inputs.shape
    return probs.reshape(-1, batch, frames, codebooks.shape[1]).permute(1, 0, 3, 2)


def plugin_mi_bits(joint: torch.Tensor) -> torch.Tensor:
    """Plug-in MI in bits of a joint distribution ``[C, C]`` (entries >= 0 summing to 1)."""
    outer = joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    return (joint * (torch.log2(joint + EPS) - torch.log2(outer + EPS))).sum()


def null_pairing(num_clips: int, clip_rows: int, product: str, generator: tp.Optional[torch.Generator]
                 ) -> torch.Tensor:
    """Row order ``[N]`` of the null: a permutation of all rows (pooled) or of each clip's rows (clip)."""
    if product == "pooled":
        return torch.randperm(num_clips * clip_rows, generator=generator)
    within = torch.stack([torch.randperm(clip_rows, generator=generator) for _ in range(num_clips)])
    return (within + clip_rows * torch.arange(num_clips)[:, None]).reshape(-1)


def soft_mutual_information(inputs: torch.Tensor, codebooks: torch.Tensor,
                            delays: tp.Optional[tp.Sequence[int]] = None, temperature: float = 1.,
                            product: str = "pooled", clamp: bool = True, correct: bool = True,
                            generator: tp.Optional[torch.Generator] = None) -> MMDIndependence:
    """Mean pairwise MI (bits) of the soft codes of ``inputs`` ``[B, K, D, T]`` (see the module docstring).

    Args:
        inputs: Per-stage inputs (the residual entering each stage), K >= 2.
        codebooks: ``[K, C, D]`` codebook entries; no gradient flows to them.
        delays: Per-codebook delays of the alignment (None: parallel).
        temperature: τ relative to each stage's mean squared quantization error.
        product: ``"pooled"`` or ``"clip"``: which rows the null pairing permutes.
        clamp: Clamp the loss at 0 (the unclamped value stays in ``estimate``).
        correct: Subtract the null pairing's MI (the bias correction); False gives the plain plug-in.
        generator: Randomness of the null pairing.

    Returns:
        An :class:`~audiocraft_mmd.losses.mmd.MMDIndependence` (``dim`` = K·C).
    """
    _check_choice(product, dict.fromkeys(SOFT_MI_PRODUCTS), "product")
    num_codebooks = inputs.shape[1]
    delays = (0,) * num_codebooks if delays is None else _check_delays(delays)
    if inputs.dtype in (torch.float16, torch.bfloat16):
        inputs = inputs.float()
    with torch.autocast(device_type=inputs.device.type, enabled=False):
        aligned = align_streams(soft_assignments(inputs, codebooks, temperature), delays)  # [B, K, C, T']
        batch, _, bins, steps = aligned.shape
        rows = aligned.permute(1, 0, 3, 2).reshape(num_codebooks, batch * steps, bins)   # [K, N, C], clip after clip
        order = null_pairing(batch, steps, product, generator).to(rows.device) if correct else None
        values = []
        for i in range(num_codebooks):
            for j in range(i + 1, num_codebooks):
                value = plugin_mi_bits(rows[i].t() @ rows[j] / rows.shape[1])
                if order is not None:
                    value = value - plugin_mi_bits(rows[i].t() @ rows[j][order] / rows.shape[1])
                values.append(value)
        estimate = torch.stack(values).mean()
    clamped = bool(clamp) and bool(estimate.detach() < 0)
    return MMDIndependence(loss=estimate.clamp_min(0) if clamp else estimate, estimate=estimate,
                           num_rows=batch * steps, dim=num_codebooks * bins, clamped=clamped)


class SoftMutualInformationLoss(nn.Module):
    """:func:`soft_mutual_information` as a module with validated options; ``forward(inputs, codebooks)``
    returns the loss and keeps the result in ``last_result`` (as :class:`~.mmd.MMDIndependenceLoss`)."""

    def __init__(self, delays: tp.Optional[tp.Sequence[int]] = None, temperature: float = 1.,
                 product: str = "pooled", clamp: bool = True):
        super().__init__()
        self.delays = None if delays is None else _check_delays(delays)
        self.temperature = _check_temperature(temperature)
        _check_choice(product, dict.fromkeys(SOFT_MI_PRODUCTS), "product")
        self.product = product
        self.clamp = bool(clamp)
        self.last_result: tp.Optional[MMDIndependence] = None

    def forward(self, inputs: torch.Tensor, codebooks: torch.Tensor,
                generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
        self.last_result = soft_mutual_information(inputs, codebooks, self.delays, self.temperature, self.product,
                                                   self.clamp, generator=generator)
        return self.last_result.loss

    def first_codebooks(self, num_codebooks: int) -> "SoftMutualInformationLoss":
        """The same loss on the first ``num_codebooks`` codebooks (see MMDIndependenceLoss.first_codebooks)."""
        if self.delays is None or num_codebooks == len(self.delays):
            return self
        return SoftMutualInformationLoss(self.delays[:num_codebooks], self.temperature, self.product, self.clamp)

    def extra_repr(self) -> str:
        return f"delays={self.delays}, temperature={self.temperature}, product={self.product!r}, clamp={self.clamp}"
