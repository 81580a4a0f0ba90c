"""The standalone ``encodec`` package (Meta's original 24/48 kHz EnCodec) as a source of streams.

Its ``EncodecModel`` has the same RVQ layout as AudioCraft's (``quantizer.vq.layers``, layers
returning ``(quantized, codes, loss)``), but a different API: no ``preprocess``, a quantizer called
as ``quantizer(latent, frame_rate, bandwidth)``, a ``bandwidth`` attribute that sets the active
codebooks, and a ``forward`` that runs through integer codes (inference only). It also differs in
one training detail: its RVQ subtracts the straight-through output of a stage from the residual, so
the input of stage k > 1 carries no gradient to the encoder. :class:`EncodecPackageAdapter` rebuilds
every stage's input as ``latent - (latent - r_k).detach()`` (same value, gradient to the encoder),
so the ``quantized`` and ``residual`` streams reach the encoder as with AudioCraft's RVQ.

:func:`load_encodec_package` builds a model from a reference such as ``encodec:24khz`` (pretrained
weights through the package, which downloads them into torch's hub cache unless present),
``encodec:24khz:/dir`` (the package's checkpoint file in ``/dir``), ``encodec:24khz:/file.th`` (a
state dict, e.g. after fine-tuning) or ``encodec:24khz:random`` (random initialisation, no
weights).
"""

from __future__ import annotations

from pathlib import Path
import typing as tp

import torch
from torch import nn

from .adapters import StreamAdapter, StreamSource, register_stream_adapter

PREFIX = "encodec:"
VARIANTS = ("24khz", "48khz")


@register_stream_adapter("encodec_package")
class EncodecPackageAdapter(StreamAdapter):
    """Streams and codes of the ``encodec`` package's ``EncodecModel`` at its current bandwidth."""

    @classmethod
    def accepts(cls, model: nn.Module) -> bool:
        return type(model).__module__.split(".")[0] == "encodec" and hasattr(model, "quantizer")

    def layers(self) -> tp.Sequence[nn.Module]:
        return self.model.quantizer.vq.layers

    def _latent(self, audio: torch.Tensor) -> tp.Tuple[torch.Tensor, tp.Optional[torch.Tensor]]:
        scale = None
        if self.model.normalize:  # the package's loudness normalisation: divide by the mono RMS
            scale = 1e-8 + audio.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()
            audio = audio / scale
        return self.model.encoder(audio), scale

    def quantize(self, audio: torch.Tensor) -> tp.Any:
        latent, _ = self._latent(audio)
        return self.model.quantizer(latent, self.model.frame_rate, self.model.bandwidth)

    def reconstruct(self, audio: torch.Tensor) -> tp.Tuple[torch.Tensor, torch.Tensor]:
        """A differentiable pass for training (the package's ``forward`` goes through integer codes):
        ``(reconstruction [B, C, T], commitment penalty)``."""
        latent, scale = self._latent(audio)
        qres = self.model.quantizer(latent, self.model.frame_rate, self.model.bandwidth)
        out = self.model.decoder(qres.quantized)[..., :audio.shape[-1]]
        return (out if scale is None else out * scale), qres.penalty

    def to_stream(self, source: StreamSource, latent: torch.Tensor, layer_input: torch.Tensor,
                  quantized: torch.Tensor) -> torch.Tensor:
        residual = latent - (latent - layer_input).detach()  # value r_k, gradient to the encoder
        return source(residual, residual + (quantized - residual).detach())

    @property
    def num_codebooks(self) -> int:
        return int(self.model.quantizer.get_num_quantizers_for_bandwidth(self.model.frame_rate, self.model.bandwidth))

    @property
    def frame_rate(self) -> float:
        return float(self.model.frame_rate)


def is_encodec_reference(reference: str) -> bool:
    return reference.startswith(PREFIX)


def load_encodec_package(reference: str, bandwidth: tp.Optional[float] = None) -> nn.Module:
    """Builds an ``encodec`` package model from ``encodec:<24khz|48khz>[:random|:<dir>|:<state dict>]``.

    Args:
        reference: The model and its weights, see the module docstring.
        bandwidth: Target bandwidth in kbps (one of the model's, e.g. 1.5, 3, 6, 12, 24 at 24 kHz),
            which sets the active codebooks; None: all of them.

    Raises:
        ValueError: On a malformed reference, a missing path or an unsupported bandwidth.
    """
    from encodec import EncodecModel

    variant, _, weights = reference[len(PREFIX):].partition(":")
    if variant not in VARIANTS:
        raise ValueError(f"unknown encodec package model {reference!r}: expected encodec:<{'|'.join(VARIANTS)}>"
                         "[:random|:<checkpoint dir>|:<state dict file>]")
    build = getattr(EncodecModel, f"encodec_model_{variant}")
    path = Path(weights)
    if weights == "random":
        model = build(pretrained=False)
    elif not weights:
        model = build(pretrained=True)  # the package's own download into torch's hub cache, if absent
    elif path.is_dir():
        model = build(pretrained=True, repository=path)
    elif path.is_file():
        model = build(pretrained=False)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    else:
        raise ValueError(f"{reference}: {path} is neither a checkpoint directory nor a state dict file")
    if bandwidth is not None:
        model.set_target_bandwidth(float(bandwidth))  # ValueError naming the supported ones
    return model.eval()
