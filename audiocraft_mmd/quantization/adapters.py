"""Stream adapters: how to read per-codebook streams and codes from one family of codecs.

The loss, the solver's metrics, the macro-batch schedule and ``python -m audiocraft_mmd.dependence``
never look inside a codec: they ask the model's adapter (:func:`adapter_for`) for the layers to
hook (one vector-quantization layer per codebook, in code order), the module whose input is the
latent, and an encoder + quantizer pass. Plugging a new codec in is one small subclass of
:class:`StreamAdapter` registered with ``@register_stream_adapter(name)``; adapters registered
later are tried first.

Registered here:

- ``audiocraft_rvq``: AudioCraft's EnCodec with ``quantizer=rvq`` (the stage layers
  ``model.quantizer.vq.layers``; with quantizer dropout only the first stages run, and only those
  are captured).
- ``codebook_layers``: any AudioCraft compression model whose quantizer lists its per-codebook
  layers as ``quantizer.codebook_layers``, e.g. the grouped quantizer of
  :mod:`audiocraft_mmd.quantization.grouped` (parallel streams over slices of the latent).

The standalone ``encodec`` package's model has its own adapter in :mod:`.encodec_package`.
"""

from __future__ import annotations

import typing as tp

import torch
from torch import nn

from ..registry import Registry

STREAM_ADAPTERS = Registry("stream adapter")
register_stream_adapter = STREAM_ADAPTERS.register

# fn(residual_in [B, D, T], quantized_out [B, D, T]) -> stream [B, D, T] (a STREAM_SOURCES entry).
StreamSource = tp.Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class StreamAdapter:
    """Base class: what the project needs to know about one family of codecs.

    A layer of :meth:`layers` must return ``(quantized [B, D, T], codes [B, T], ...)`` from a
    forward whose first input is what it quantizes (an RVQ stage's residual, a group's slice).

    Args:
        model: The codec.
    """

    def __init__(self, model: nn.Module):
        # Any: read by duck typing, each family has its own attributes (quantizer, frame_rate, ...).
        self.model: tp.Any = model

    @classmethod
    def accepts(cls, model: nn.Module) -> bool:
        """Whether this adapter reads ``model``."""
        raise NotImplementedError

    def layers(self) -> tp.Sequence[nn.Module]:
        """The vector-quantization layers, one per codebook, in code order."""
        raise NotImplementedError

    def quantizer(self) -> nn.Module:
        """The module whose forward receives the latent ``[B, D, T]`` as first input."""
        return self.model.quantizer

    def quantize(self, audio: torch.Tensor) -> None:
        """Encoder and quantizer on ``audio`` ``[B, C, T]`` (no decoder), in the model's current mode."""
        raise NotImplementedError

    def to_stream(self, source: StreamSource, latent: torch.Tensor, layer_input: torch.Tensor,
                  quantized: torch.Tensor) -> torch.Tensor:
        """The stream of one layer from what it received and returned."""
        return source(layer_input, quantized)

    def codebook(self, layer: nn.Module) -> tp.Optional[torch.Tensor]:
        """The layer's codebook entries ``[C, D']`` (detached), or None: AudioCraft's and the encodec
        package's ``VectorQuantization`` keep them in ``_codebook.embed``."""
        embed = getattr(getattr(layer, "_codebook", None), "embed", None)
        return None if embed is None else embed.detach()

    def codebook_input(self, layer: nn.Module, layer_input: torch.Tensor) -> torch.Tensor:
        """What the layer compares with its codebook: its input ``[B, D, T]`` through its ``project_in``
        (an identity unless the codebook has its own dimension), as ``[B, D', T]``."""
        project = getattr(layer, "project_in", None)
        if project is None or isinstance(project, nn.Identity):
            return layer_input
        return project(layer_input.transpose(1, 2)).transpose(1, 2)

    @property
    def num_codebooks(self) -> int:
        """Active codebooks of a pass."""
        return int(self.model.num_codebooks)

    @property
    def bins(self) -> int:
        return int(self.model.quantizer.bins)

    @property
    def sample_rate(self) -> int:
        return int(self.model.sample_rate)

    @property
    def channels(self) -> int:
        return int(self.model.channels)

    @property
    def frame_rate(self) -> float:
        return float(self.model.frame_rate)


def adapter_for(model: nn.Module) -> StreamAdapter:
    """The adapter of ``model``: the last registered one that accepts it.

    Raises:
        TypeError: If no registered adapter reads the model.
    """
    for adapter in reversed(list(STREAM_ADAPTERS.values())):
        if adapter.accepts(model):
            return adapter(model)
    raise TypeError(
        f"{type(model).__name__} has no residual vector quantizer (model.quantizer.vq.layers) nor another "
        f"quantizer a registered stream adapter reads ({sorted(STREAM_ADAPTERS)}); stream capture supports "
        "AudioCraft EnCodec models (quantizer=rvq or grouped) and the encodec package's EncodecModel. "
        "See README, 'Other codecs and the independence adversary', to plug a new codec in.")


class AudioCraftAdapter(StreamAdapter):
    """Common part of AudioCraft ``CompressionModel`` adapters: the encoder + quantizer pass."""

    @classmethod
    def accepts(cls, model: nn.Module) -> bool:
        return hasattr(model, "preprocess") and hasattr(model, "encoder") and hasattr(model, "quantizer")

    def quantize(self, audio: torch.Tensor) -> None:
        x, _ = self.model.preprocess(audio)  # identity unless encodec.renormalize
        self.model.quantizer(self.model.encoder(x), self.model.frame_rate)


@register_stream_adapter("audiocraft_rvq")
class AudioCraftRVQAdapter(AudioCraftAdapter):
    """AudioCraft's residual vector quantizer: stage k's layer quantizes the residual of stages < k."""

    @classmethod
    def accepts(cls, model: nn.Module) -> bool:
        layers = getattr(getattr(getattr(model, "quantizer", None), "vq", None), "layers", None)
        return isinstance(layers, nn.ModuleList) and super().accepts(model)

    def layers(self) -> tp.Sequence[nn.Module]:
        return self.model.quantizer.vq.layers


@register_stream_adapter("codebook_layers")
class CodebookLayersAdapter(AudioCraftAdapter):
    """An AudioCraft model whose quantizer lists its per-codebook layers as ``codebook_layers``."""

    @classmethod
    def accepts(cls, model: nn.Module) -> bool:
        layers = getattr(getattr(model, "quantizer", None), "codebook_layers", None)
        return isinstance(layers, nn.ModuleList) and super().accepts(model)

    def layers(self) -> tp.Sequence[nn.Module]:
        return self.model.quantizer.codebook_layers
