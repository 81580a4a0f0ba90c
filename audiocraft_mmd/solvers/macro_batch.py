"""The paper's macro-batch schedule: the independence loss every M steps, on the last M batches.

The MMD needs many rows to mean something (the paper uses N ≈ 11.8k per GPU), far more than one
step's batch. Every M training steps, the M batches seen since the last loss step are encoded again
and the loss is computed on all their rows at once; its gradient joins that step's update. The
encoder runs under gradient checkpointing (activations are recomputed in the backward pass, so
memory holds one batch's activations at a time, not M) and the codebooks are frozen during the
re-encoding: the reference code updated its EMA codebooks a second time on audio they had
already seen.
"""

from __future__ import annotations

import typing as tp

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..quantization import capture_streams, frozen_codebooks

if tp.TYPE_CHECKING:
    from audiocraft.models.encodec import EncodecModel


class MacroBatch:
    """The last ``size`` training batches, re-encoded into one stream tensor when complete.

    Args:
        size: M, the number of batches in a macro-batch (and steps between two loss steps).
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"macro-batch size must be >= 1, got {size}")
        self.size = size
        self.batches: tp.List[torch.Tensor] = []

    def add(self, batch: torch.Tensor) -> bool:
        """Stores ``batch`` (detached); True when the macro-batch is complete."""
        self.batches.append(batch.detach())
        return len(self.batches) == self.size

    def streams(self, model: nn.Module, source: str) -> torch.Tensor:
        """Per-codebook streams ``[M·B, K, D, T]`` of the stored batches, differentiable w.r.t. the
        encoder; empties the macro-batch."""
        batches, self.batches = self.batches, []
        codec = tp.cast("EncodecModel", model)  # nn.Module's __getattr__ types its submodules Tensor | Module
        streams = []
        with frozen_codebooks(model):
            for audio in batches:
                with capture_streams(model, source) as captured:
                    audio, _ = codec.preprocess(audio)  # identity unless encodec.renormalize
                    latent = checkpoint(codec.encoder, audio, use_reentrant=False)
                    codec.quantizer(latent, codec.frame_rate)
                streams.append(captured.streams)
        return torch.cat(streams)
