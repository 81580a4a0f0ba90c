"""A grouped (product) quantizer: K codebooks quantize K separate slices of the latent.

An RVQ's codebooks are residual stages, each quantizing what the previous ones left. Here the
latent's D channels are split into K contiguous slices of D/K channels and slice k is quantized by
codebook k alone: the K code streams are parallel, as in a product quantizer (or the groups of a
"grouped" RVQ with one stage per group). The decoder receives the concatenated quantized slices.
Each codebook is AudioCraft's ``VectorQuantization`` (EMA updates, k-means initialisation,
dead-code expiry, straight-through gradient to the encoder), so everything this project does with
an RVQ's stage layers (stream capture, consistent EMA codebooks, frozen codebooks) applies to the
groups unchanged: they are listed as ``codebook_layers`` (see :mod:`.adapters`).

Selected with ``encodec.quantizer=grouped`` and a ``grouped`` config section (the model config
``model=encodec/small_grouped``), built by AudioCraft's own ``get_compression_model`` once
:mod:`audiocraft_mmd` is imported (:func:`audiocraft_mmd.registry.register_quantizer`).
"""

from __future__ import annotations

import math
import typing as tp

import torch
from torch import nn

from audiocraft.quantization.base import BaseQuantizer, QuantizedResult
from audiocraft.quantization.core_vq import VectorQuantization

from ..registry import register_quantizer


@register_quantizer("grouped")
class GroupedVectorQuantizer(BaseQuantizer):
    """K codebooks of ``bins`` entries, codebook k quantizing channels ``[k·D/K, (k+1)·D/K)``.

    Args:
        dimension: D, the latent's channels (set by the builder from the encoder).
        n_q: K, the number of codebooks (slices); must divide D.
        bins: Entries per codebook.
        decay: EMA decay of the codebooks.
        kmeans_init: Initialise each codebook by k-means on its first batch.
        kmeans_iters: k-means iterations.
        threshold_ema_dead_code: EMA cluster size under which a code is replaced.
        commitment_weight: Weight of the commitment penalty.

    Raises:
        ValueError: If ``n_q`` does not divide ``dimension`` or a size is not positive.
    """

    def __init__(self, dimension: int = 128, n_q: int = 4, bins: int = 256, decay: float = 0.99,
                 kmeans_init: bool = True, kmeans_iters: int = 10, threshold_ema_dead_code: int = 2,
                 commitment_weight: float = 1.0):
        super().__init__()
        if n_q < 1 or bins < 2:
            raise ValueError(f"n_q must be >= 1 and bins >= 2, got n_q={n_q}, bins={bins}")
        if dimension % n_q:
            raise ValueError(f"n_q={n_q} must divide the latent dimension {dimension} (each codebook quantizes "
                             f"a slice of dimension / n_q channels)")
        self.dimension = dimension
        self.n_q = n_q
        self.bins = bins
        self.codebook_layers = nn.ModuleList([
            VectorQuantization(dim=dimension // n_q, codebook_size=bins, decay=decay, kmeans_init=kmeans_init,
                               kmeans_iters=kmeans_iters, threshold_ema_dead_code=threshold_ema_dead_code,
                               commitment_weight=commitment_weight, channels_last=False)
            for _ in range(n_q)])

    @property
    def stream_dimension(self) -> int:
        """D/K: the dimension of one codebook's stream."""
        return self.dimension // self.n_q

    def _slices(self, x: torch.Tensor) -> tp.Tuple[torch.Tensor, ...]:
        if x.shape[1] != self.dimension:
            raise ValueError(f"latent has {x.shape[1]} channels, the quantizer expects {self.dimension}")
        return x.split(self.stream_dimension, dim=1)

    def forward(self, x: torch.Tensor, frame_rate: int) -> QuantizedResult:
        outputs = [layer(part) for layer, part in zip(self.codebook_layers, self._slices(x))]
        quantized = torch.cat([out[0] for out in outputs], dim=1)
        codes = torch.stack([out[1] for out in outputs], dim=1)  # [B, K, T]
        penalty = torch.mean(torch.cat([out[2] for out in outputs]))
        bandwidth = torch.tensor(self.n_q * math.log2(self.bins) * frame_rate / 1000).to(x)
        return QuantizedResult(quantized, codes, bandwidth, penalty=penalty)

    def _layers(self) -> tp.Sequence[VectorQuantization]:
        return tp.cast(tp.Sequence[VectorQuantization], self.codebook_layers)  # ModuleList items are typed Module

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([layer.encode(part) for layer, part in zip(self._layers(), self._slices(x))], dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.cat([layer.decode(codes[:, k]) for k, layer in enumerate(self._layers())], dim=1)

    @property
    def total_codebooks(self) -> int:
        return self.n_q

    @property
    def num_codebooks(self) -> int:
        return self.n_q

    def set_num_codebooks(self, n: int) -> None:
        if n != self.n_q:  # every slice is needed to decode: no codebook can be dropped
            raise ValueError(f"a grouped quantizer decodes with all of its {self.n_q} codebooks, not {n}")
