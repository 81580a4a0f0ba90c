"""The multi-scale log-mel loss (losses/log_mel.py), reached as AudioCraft's solvers reach a loss."""

import math

import omegaconf
import pytest
import torch

import audiocraft_mmd  # noqa: F401  (patches AudioCraft's loss builder)
from audiocraft.solvers import builders

SR = 8000


def _cfg(**logmel):
    section = {"sample_rate": SR, "window_lengths": [64, 256, 1024], "n_mels": [10, 40, 160], **logmel}
    return omegaconf.OmegaConf.create({"logmel": section})


def _tone(freq: float, amplitude: float, seconds: float = 1.) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    return amplitude * torch.sin(2 * math.pi * freq * t)[None, None]


def test_log_mel_loss_is_built_by_audiocraft_and_matches_a_loop_over_scales():
    import torchaudio
    loss = builders.get_loss("logmel", _cfg())
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 1, SR, generator=g), torch.randn(2, 1, SR, generator=g)
    assert float(loss(x, x)) == 0.
    terms = []
    for window, mels in ((64, 10), (256, 40), (1024, 160)):
        mel = torchaudio.transforms.MelSpectrogram(SR, n_fft=window, hop_length=window // 4, n_mels=mels,
                                                   power=1., norm="slaney", mel_scale="slaney")
        terms.append(torch.mean(torch.abs(2 * torch.log10(mel(x).clamp(min=1e-5))
                                          - 2 * torch.log10(mel(y).clamp(min=1e-5)))))
    assert float(loss(x, y)) == pytest.approx(float(sum(terms) / 3), rel=1e-5)


def test_log_mel_loss_weights_a_quiet_band_as_much_as_a_loud_one():
    # Loud bass and quiet treble (40 dB down): the waveform L1 sees a 6 dB error on the treble 100 times
    # less than one on the bass; the log-mel loss within a factor of 5 (the bass's error also moves its
    # window's leakage, so it reaches more bins).
    loss = builders.get_loss("logmel", _cfg())
    bass, treble = _tone(110, 0.5), _tone(2500, 0.005)
    reference = bass + treble
    bass_error, treble_error = 2 * bass + treble, bass + 2 * treble
    l1 = torch.nn.functional.l1_loss
    assert l1(treble_error, reference) < l1(bass_error, reference) / 50
    ratio = float(loss(treble_error, reference) / loss(bass_error, reference))
    assert 0.2 < ratio < 5, ratio


def test_bad_log_mel_config_names_the_section():
    from audiocraft_mmd.errors import ConfigError
    with pytest.raises(ConfigError, match="logmel.*one entry per scale"):
        builders.get_loss("logmel", _cfg(n_mels=[10, 40]))
    with pytest.raises(ConfigError, match="logmel.*unexpected keyword"):
        builders.get_loss("logmel", _cfg(window=3))
    with pytest.raises(ConfigError, match="losses.logmel needs a `logmel:` config section"):
        builders.get_loss("logmel", omegaconf.OmegaConf.create({}))
