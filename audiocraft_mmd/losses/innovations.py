"""Innovations: what the past of the aligned streams does not predict, for independence given the past.

For the K codes of one LM step z_t and their past C,

    TC(z_t) = TC(z_t | C) + [ Σ_k I(z_k,t ; C) − I(z_t ; C) ],

and a parallel (or delay) LM pays TC(z_t | C), not TC(z_t). The paper's loss penalises TC(z_t), which
the encoder can also lower by making each codebook less predictable from its past (docs/METHOD.md).
Here a small causal predictor g reads the K aligned streams up to step t-1 and gives a Gaussian
(mean, log-scale per feature) for step t; the innovations

    u_k,t = (x_k,t − μ_k,t) / σ_k,t

are what the past leaves unexplained, and the existing estimators run on them unchanged: dependence
between codebooks that the past explains is no longer penalised (in the spirit of CIRCE's residuals).

The streams are aligned first (the delay grid when the loss's alignment is delay, so "the past" is
what a delay LM has read) and standardised per feature over the batch's steps: the Gaussian's
negative log-likelihood is then a fraction of explained variance, which the encoder cannot lower by
shrinking its vectors. Step 0 reads only zero padding, as an LM's first step reads no past.

Pure torch: nothing here imports AudioCraft.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import typing as tp

import torch
from torch import nn
from torch.func import functional_call

from .mmd import STANDARDIZE_EPS, align_streams

# conv: a causal convolution over the last receptive_field steps; gru: a GRU over every earlier step
# of the segment (no limit: as long a context as an LM's), receptive_field unused.
PREDICTOR_KINDS = ("conv", "gru")
# |log σ| stays below this (a smooth bound): a predictor cannot make one innovation infinite.
LOG_SCALE_LIMIT = 5.0
HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


def standardize_steps(aligned: torch.Tensor, eps: float = STANDARDIZE_EPS) -> torch.Tensor:
    """Each of the K·D features of ``aligned`` ``[B, K, D, T]`` standardised over the B·T steps
    (statistics not detached: the gradient flows through them, as in the loss's standardisation)."""
    var, mean = torch.var_mean(aligned, dim=(0, 3), unbiased=False, keepdim=True)
    return (aligned - mean) / torch.sqrt(var + eps)


class CausalPredictor(nn.Module):
    """g: a Gaussian for each aligned step t from the K streams at the steps before t.

    ``kind="conv"``: a causal convolution of kernel ``receptive_field`` (R) over the K·D features reads
    exactly the R steps before t; ``kind="gru"``: a GRU reads every step before t. Pointwise layers
    then give a mean and a log-scale for every feature of step t. The last layer starts at zero, so an
    untrained g predicts N(0, 1): its innovations are the standardised streams, and the loss on them
    is the paper's loss.

    Args:
        num_codebooks: K.
        dim: D, the dimension of a codebook's vector.
        hidden: Width of the hidden layers (and of the GRU's state).
        receptive_field: R, the number of past steps the convolution reads (>= 1).
        kind: A key of :data:`PREDICTOR_KINDS`.
    """

    def __init__(self, num_codebooks: int, dim: int, hidden: int = 128, receptive_field: int = 8, kind: str = "conv"):
        super().__init__()
        if receptive_field < 1 or hidden < 1:
            raise ValueError(f"receptive_field and hidden must be >= 1, got {receptive_field} and {hidden}")
        if kind not in PREDICTOR_KINDS:
            raise ValueError(f"kind={kind!r} is not one of {PREDICTOR_KINDS}")
        self.num_codebooks = num_codebooks
        self.dim = dim
        self.receptive_field = receptive_field
        self.kind = kind
        features = num_codebooks * dim
        self.past: nn.Module = (nn.Conv1d(features, hidden, kernel_size=receptive_field) if kind == "conv"
                                else nn.GRU(features, hidden, batch_first=True))
        self.head = nn.Sequential(nn.GELU(), nn.Conv1d(hidden, hidden, 1), nn.GELU(),
                                  nn.Conv1d(hidden, 2 * features, 1))
        last = self.head[-1]
        assert isinstance(last, nn.Conv1d) and last.bias is not None
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def context(self, aligned: torch.Tensor) -> torch.Tensor:
        """``[B, K, D, T]`` aligned streams -> ``[B, hidden, T]``: g's state at each step, what it read
        of the steps before it."""
        batch, num_codebooks, dim, steps = aligned.shape
        if (num_codebooks, dim) != (self.num_codebooks, self.dim):
            raise ValueError(f"streams have K = {num_codebooks}, D = {dim}; the predictor was built for "
                             f"K = {self.num_codebooks}, D = {self.dim}")
        flat = aligned.reshape(batch, num_codebooks * dim, steps)
        if self.kind == "gru":  # one zero step first: the state at step t has read steps 0 … t - 1
            shifted = nn.functional.pad(flat, (1, 0))[..., :steps]
            states, _ = self.past(shifted.transpose(1, 2))
            return states.transpose(1, 2)
        # R zeros before step 0; output i reads padded[i : i + R] = steps i - R … i - 1; the last
        # output (step T, never needed) is dropped.
        padded = nn.functional.pad(flat, (self.receptive_field, 0))
        return self.past(padded)[..., :steps]

    def forward(self, aligned: torch.Tensor) -> tp.Tuple[torch.Tensor, torch.Tensor]:
        """``[B, K, D, T]`` aligned streams -> mean and log-scale ``[B, K, D, T]`` of each step given
        the steps before it."""
        batch, num_codebooks, dim, steps = aligned.shape
        out = self.head(self.context(aligned))
        mean, raw_log_scale = out.reshape(batch, 2, num_codebooks, dim, steps).unbind(1)
        log_scale = LOG_SCALE_LIMIT * torch.tanh(raw_log_scale / LOG_SCALE_LIMIT)
        return mean, log_scale


@dataclass
class Innovations:
    """Result of :func:`innovations`.

    Attributes:
        innovations: ``[B, K, D, T']`` u = (x − μ) / σ on the aligned, standardised streams (delays
            already applied: pass them to an estimator with zero delays).
        nll: The Gaussian negative log-likelihood of the standardised streams under g, nats per
            feature and step (about 1.42 = ½ log 2πe for an untrained g; lower when the past predicts).
        nll_per_codebook: ``[K]`` the same per codebook (their mean is ``nll``): how well the past
            predicts each codebook, a Gaussian proxy of the terms I(z_k,t ; C) of the identity.
    """
    innovations: torch.Tensor
    nll: torch.Tensor
    nll_per_codebook: torch.Tensor


def step_innovations(standardized: torch.Tensor, predictor: CausalPredictor, frozen: bool = False) -> Innovations:
    """The innovations of already aligned and standardised streams ``[B, K, D, T']`` (see :func:`innovations`)."""
    if frozen:
        params = {name: value.detach() for name, value in predictor.named_parameters()}
        mean, log_scale = functional_call(predictor, params, (standardized,))
    else:
        mean, log_scale = predictor(standardized)
    residual = (standardized - mean) * torch.exp(-log_scale)
    per_codebook = (0.5 * residual.pow(2) + log_scale).mean(dim=(0, 2, 3)) + HALF_LOG_TWO_PI
    return Innovations(innovations=residual, nll=per_codebook.mean(), nll_per_codebook=per_codebook)


def innovations(streams: torch.Tensor, predictor: CausalPredictor, delays: tp.Optional[tp.Sequence[int]] = None,
                frozen: bool = False) -> Innovations:
    """The innovations of ``streams`` ``[B, K, D, T]`` given their past, and g's NLL.

    Args:
        streams: Per-codebook vectors.
        predictor: g.
        delays: The alignment's per-codebook delays (see :func:`~.mmd.align_streams`); None = parallel.
        frozen: Use g's parameters detached: the gradient reaches ``streams`` (as targets and as
            context) but not g, whose own optimiser trains it on its NLL alone.
    """
    aligned = align_streams(streams, (0,) * streams.shape[1] if delays is None else delays)
    if aligned.dtype in (torch.float16, torch.bfloat16):
        aligned = aligned.float()
    with torch.autocast(device_type=aligned.device.type, enabled=False):
        return step_innovations(standardize_steps(aligned), predictor, frozen=frozen)
