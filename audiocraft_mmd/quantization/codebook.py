"""EMA codebook updates that keep their statistics consistent (AudioCraft 1.3.0's `EuclideanCodebook`).

AudioCraft's EMA codebook stores ``embed_avg`` (running sum of assigned vectors) and
``cluster_size`` (running count), and sets each code to ``embed_avg / cluster_size`` after every
training step. Two of its updates break that invariant:

- k-means initialisation sets ``embed_avg = embed`` while ``cluster_size`` holds the k-means counts,
  so the first EMA step divides every code by its count (codes shrink, empty clusters blow up) and
  a small model's codebooks collapse to one or two used codes within a few steps;
- dead-code expiry replaces ``embed`` only, which the EMA step overwrites right after, so dead codes
  are never actually replaced.

:class:`ConsistentEMACodebook` overrides those two methods and nothing else; it has the same buffers,
so checkpoints load into AudioCraft's class unchanged.
"""

from __future__ import annotations

import flashy
import torch
from torch import nn

from audiocraft.quantization.core_vq import EuclideanCodebook, kmeans, sample_vectors

from .streams import rvq_layers


class ConsistentEMACodebook(EuclideanCodebook):
    """`EuclideanCodebook` whose initialisation and dead-code expiry keep ``embed = embed_avg / cluster_size``."""

    # The parent's buffers (registered, so nn.Module's __getattr__ would type them Tensor | Module).
    inited: torch.Tensor
    cluster_size: torch.Tensor
    embed: torch.Tensor
    embed_avg: torch.Tensor

    @torch.jit.ignore
    def init_embed_(self, data: torch.Tensor) -> None:
        if self.inited:
            return
        embed, counts = kmeans(data, self.codebook_size, self.kmeans_iters)
        counts = counts.to(embed).clamp(min=1)  # an empty cluster keeps its sampled vector, as one point
        self.embed.data.copy_(embed)
        self.embed_avg.data.copy_(embed * counts[:, None])
        self.cluster_size.data.copy_(counts)
        self.inited.data.copy_(torch.ones_like(self.inited))
        flashy.distrib.broadcast_tensors(self.buffers())

    def expire_codes_(self, batch_samples: torch.Tensor) -> None:
        if self.threshold_ema_dead_code == 0:
            return
        expired = self.cluster_size < self.threshold_ema_dead_code
        if not torch.any(expired):
            return
        samples = batch_samples.reshape(-1, batch_samples.shape[-1])
        new_codes = sample_vectors(samples, self.codebook_size)
        # A replaced code starts as `threshold` points at a batch vector, so it survives the next check.
        count = float(self.threshold_ema_dead_code)
        self.embed.data.copy_(torch.where(expired[:, None], new_codes, self.embed))
        self.embed_avg.data.copy_(torch.where(expired[:, None], new_codes * count, self.embed_avg))
        self.cluster_size.data.copy_(torch.where(expired, torch.full_like(self.cluster_size, count), self.cluster_size))
        flashy.distrib.broadcast_tensors(self.buffers())


def use_consistent_codebooks(model: nn.Module) -> None:
    """Switches every RVQ stage of ``model`` to :class:`ConsistentEMACodebook`, in place."""
    for layer in rvq_layers(model):
        if type(layer._codebook) is EuclideanCodebook:
            layer._codebook.__class__ = ConsistentEMACodebook
