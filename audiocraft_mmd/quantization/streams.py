"""Per-codebook streams of a residual vector quantizer, captured during the model's own forward pass.

The independence loss needs, for every RVQ stage k, a vector per frame (a "stream"). The streams are
read with forward hooks on AudioCraft's `VectorQuantization` layers, so the quantizer runs once, as
in training (no second pass, hence no extra EMA codebook update), and the values are exactly those
the decoder saw. A *stream source* turns what a layer received and returned into the stream:

- ``quantized`` (paper, default): the stage-k quantized vector q_k. In training AudioCraft's layer
  returns it with a straight-through estimator, ``r_k + (q_k - r_k).detach()``, where r_k is the
  residual entering stage k, so its gradient reaches the encoder and never the codebooks (EMA
  buffers) or the decoder.
- ``residual``: the residual left after stage k, ``r_k - q_k`` (the last revision of the reference
  code); its gradient reaches the encoder through r_k.

Which layers to hook is the model's stream adapter's business (:mod:`.adapters`): AudioCraft's RVQ,
the grouped quantizer of :mod:`.grouped` (a layer per slice of the latent, where r_k is the slice)
and the standalone ``encodec`` package (:mod:`.encodec_package`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
import typing as tp

import torch
from torch import nn

from ..registry import Registry
from .adapters import adapter_for

# Entries: ``fn(residual_in [B, D, T], quantized_out [B, D, T]) -> stream [B, D, T]``.
STREAM_SOURCES = Registry("stream source")
register_stream_source = STREAM_SOURCES.register


@register_stream_source("quantized")
def quantized_stream(residual: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    return quantized


@register_stream_source("residual")
def residual_stream(residual: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    return residual - quantized.detach()


@dataclass
class CapturedStreams:
    """What one forward pass of the model exposed, filled in by :func:`capture_streams`.

    Attributes:
        latent: Encoder output entering the quantizer, ``[B, D, T]``.
        stream_list: One ``[B, D, T]`` stream per active codebook, in stage order.
        code_list: One ``[B, T]`` code tensor per active codebook.
        input_list: What each stage quantized, ``[B, D', T]`` in its codebook's space (the residual
            entering an RVQ stage, a group's slice), with its gradient to the encoder.
        codebook_list: Each stage's codebook entries ``[C, D']`` (detached), or None where the layer
            exposes none (:meth:`.adapters.StreamAdapter.codebook`).
    """
    latent: tp.Optional[torch.Tensor] = None
    stream_list: tp.List[torch.Tensor] = field(default_factory=list)
    code_list: tp.List[torch.Tensor] = field(default_factory=list)
    input_list: tp.List[torch.Tensor] = field(default_factory=list)
    codebook_list: tp.List[tp.Optional[torch.Tensor]] = field(default_factory=list)

    @property
    def streams(self) -> torch.Tensor:
        """Streams as ``[B, K, D, T]``."""
        return torch.stack(self.stream_list, dim=1)

    @property
    def codes(self) -> torch.Tensor:
        """Codes as ``[B, K, T]``."""
        return torch.stack(self.code_list, dim=1)

    @property
    def inputs(self) -> torch.Tensor:
        """Stage inputs as ``[B, K, D', T]``."""
        return torch.stack(self.input_list, dim=1)

    @property
    def codebooks(self) -> torch.Tensor:
        """Codebooks as ``[K, C, D']``; ValueError if a stage has none."""
        codebooks = [codebook for codebook in self.codebook_list if codebook is not None]
        if len(codebooks) < len(self.codebook_list):
            raise ValueError("this codec's quantization layers expose no codebook entries (StreamAdapter.codebook)")
        return torch.stack(codebooks)


def rvq_layers(model: nn.Module) -> tp.Sequence[nn.Module]:
    """The per-codebook quantization layers of ``model`` (an RVQ's stages, a grouped quantizer's
    groups), found by its stream adapter (:mod:`.adapters`); TypeError for models no adapter reads."""
    return adapter_for(model).layers()


def stream_dimension(model: nn.Module) -> int:
    """D of the ``[B, K, D, T]`` streams: the quantizer's ``stream_dimension`` when it has one (a
    grouped quantizer's slice), else its ``dimension`` (an RVQ's stages all quantize the latent)."""
    quantizer: tp.Any = model.quantizer  # duck-typed: an RVQ, a grouped quantizer, ...
    return int(getattr(quantizer, "stream_dimension", None) or quantizer.dimension)


@contextlib.contextmanager
def capture_streams(model: nn.Module, source: str = "quantized") -> tp.Iterator[CapturedStreams]:
    """Collects per-codebook streams and codes while ``model`` runs inside the ``with`` block.

    Example:
        >>> with capture_streams(model) as captured:
        ...     qres = model(audio)
        >>> captured.streams.shape  # [B, K, D, T]
    """
    to_stream = STREAM_SOURCES.lookup(source)
    adapter = adapter_for(model)
    captured = CapturedStreams()

    def on_layer(module, inputs, outputs):
        quantized, codes = outputs[0], outputs[1]
        captured.stream_list.append(adapter.to_stream(to_stream, captured.latent, inputs[0], quantized))
        captured.code_list.append(codes)
        captured.input_list.append(adapter.codebook_input(module, inputs[0]))
        captured.codebook_list.append(adapter.codebook(module))

    def on_quantizer(module, inputs):
        captured.latent = inputs[0]

    handles = [layer.register_forward_hook(on_layer) for layer in adapter.layers()]
    handles.append(adapter.quantizer().register_forward_pre_hook(on_quantizer))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def frozen_codebooks(model: nn.Module) -> tp.Iterator[None]:
    """Inside the block, the RVQ codebooks quantize without updating (no EMA step, no dead-code
    expiry) while the layers stay in training mode, so the straight-through gradient still reaches
    the encoder. For passes that re-encode audio already seen, e.g. the macro-batch schedule.
    Quantizer dropout is off too, so that every re-encoded batch has the same active codebooks (the
    quantizer's current ``n_q``) and their streams concatenate."""
    # Any: duck-typed layers and quantizer (AudioCraft's, the encodec package's, the grouped one).
    codebooks: tp.List[tp.Any] = [layer._codebook for layer in rvq_layers(model)]
    quantizer: tp.Any = model.quantizer
    modes = [codebook.training for codebook in codebooks]
    dropout = getattr(quantizer, "q_dropout", None)  # AudioCraft's RVQ; other quantizers have none
    try:
        for codebook in codebooks:
            codebook.train(False)
        if dropout is not None:
            quantizer.q_dropout = False
        yield
    finally:
        for codebook, mode in zip(codebooks, modes):
            codebook.train(mode)
        if dropout is not None:
            quantizer.q_dropout = dropout
