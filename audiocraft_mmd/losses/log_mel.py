"""A multi-scale log-mel loss that weights every band alike (descript-audio-codec's recipe).

AudioCraft's waveform (L1, SI-SNR) and linear-magnitude (``msspec``) terms are dominated by the
bass, where music holds most of its energy: a codec trained on them alone reproduces the bass and
a noise floor. An L1 distance between log mel magnitudes counts a 10 dB error in a quiet band as
much as in a loud one, and its short windows see transients, its long ones harmonics. Kumar et al.
(2023) weight it 15 against the adversarial terms; here it goes through AudioCraft's balancer as
``losses.logmel``.
"""

import typing as tp

import torch
from torch import nn
import torchaudio

from ..registry import register_loss


@register_loss("logmel")
class MultiScaleLogMelLoss(nn.Module):
    """Mean over scales of ``L1(log10(max(mel(x), floor) ** power), same for y)``.

    Args:
        sample_rate: Audio sample rate.
        window_lengths: STFT window of each scale (hop: a quarter of it).
        n_mels: Mel bands of each scale (as many entries as ``window_lengths``).
        f_min: Lowest mel frequency; ``f_max`` the highest (None: Nyquist).
        power: Exponent on the mel magnitudes inside the log (2: power, as descript-audio-codec).
        floor: Magnitudes below are clamped, so that silence does not dominate the log.
        magnitude_weight: Weight of an extra L1 on the mel magnitudes themselves (0: log only).
    """

    def __init__(self, sample_rate: int, window_lengths: tp.Sequence[int] = (32, 64, 128, 256, 512, 1024),
                 n_mels: tp.Sequence[int] = (5, 10, 20, 40, 80, 160), f_min: float = 0.,
                 f_max: tp.Optional[float] = None, power: float = 2., floor: float = 1e-5,
                 magnitude_weight: float = 0.):
        super().__init__()
        if len(window_lengths) != len(n_mels) or not window_lengths:
            raise ValueError(f"logmel: window_lengths {list(window_lengths)} and n_mels {list(n_mels)} "
                             "need one entry per scale")
        self.power, self.floor, self.magnitude_weight = power, floor, magnitude_weight
        self.transforms = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=window, win_length=window, hop_length=window // 4,
                f_min=f_min, f_max=f_max, n_mels=mels, power=1., center=True, norm="slaney",
                mel_scale="slaney", window_fn=torch.hann_window)
            for window, mels in zip(window_lengths, n_mels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        for transform in self.transforms:
            mel_x, mel_y = transform(x), transform(y)
            log_x = self.power * torch.log10(mel_x.clamp(min=self.floor))
            log_y = self.power * torch.log10(mel_y.clamp(min=self.floor))
            total = total + (log_x - log_y).abs().mean()
            if self.magnitude_weight:
                total = total + self.magnitude_weight * (mel_x - mel_y).abs().mean()
        return total / len(self.transforms)
