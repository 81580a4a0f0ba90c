"""A SEANet encoder with a log-spectrum branch (``encodec.autoencoder=seanet_spectral``).

A small strided-convolution encoder learns the bass first and, within a CPU budget, little above
1 kHz: its filters must discover band-pass analysis from the waveform. The branch hands it one: the
log magnitude of a short-time Fourier transform, one frame per latent frame, through a 1x1 and a
3-tap convolution into the latent, added to the SEANet output. Only the encoder changes, so the codec
stays an AudioCraft ``EncodecModel`` with the same latent, frame rate and quantizer.
"""

import typing as tp

import torch
from torch import nn

from audiocraft.modules import SEANetEncoder


class SpectralSEANetEncoder(SEANetEncoder):
    """AudioCraft's ``SEANetEncoder`` (same modules and state-dict keys) plus ``branch(log|STFT|)``,
    frame-aligned, added to its output.

    Args:
        seanet: Keyword arguments of AudioCraft's ``SEANetEncoder``.
        n_fft: STFT size of the branch (its hop is the encoder's hop length); at least the hop.
        hidden: Channels of the branch's hidden layer.
        floor: Magnitudes below are clamped before the log.
    """

    def __init__(self, seanet: tp.Dict[str, tp.Any], n_fft: int = 320, hidden: int = 128, floor: float = 1e-5):
        super().__init__(**seanet)
        if n_fft < int(self.hop_length):
            raise ValueError(f"spectral_encoder.n_fft={n_fft} is below the encoder's hop ({self.hop_length}): "
                             "some samples would be seen by no frame")
        self.n_fft, self.floor = n_fft, floor
        self.window: torch.Tensor
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        bins = (n_fft // 2 + 1) * self.channels
        self.branch = nn.Sequential(
            nn.Conv1d(bins, hidden, 1), nn.ELU(),
            nn.Conv1d(hidden, self.dimension, 3, padding=1))

    def log_spectrum(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """``[B, channels * (n_fft // 2 + 1), frames]``: frame t centred on sample t * hop + hop / 2."""
        batch, channels, length = x.shape
        hop = int(self.hop_length)
        # Centre frame t on the middle of the hop it codes; pad so that every frame exists.
        left = (self.n_fft - hop) // 2
        right = max(0, frames * hop + self.n_fft - hop - left - length)
        padded = nn.functional.pad(x.reshape(batch * channels, length), (left, right), mode="constant")
        spec = torch.stft(padded, self.n_fft, hop_length=hop, window=self.window, center=False,
                          return_complex=True)[..., :frames]
        log = torch.log(spec.abs().clamp(min=self.floor))
        return log.reshape(batch, channels * log.shape[1], frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        latent = self.model(x)
        return latent + self.branch(self.log_spectrum(x, latent.shape[-1]))
