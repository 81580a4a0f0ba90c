"""The loss on the error's frame-periodic part (losses/frame_periodic.py)."""

import omegaconf
import pytest
import torch

import audiocraft_mmd  # noqa: F401  (patches AudioCraft's loss builder)
from audiocraft.solvers import builders

from audiocraft_mmd.losses.frame_periodic import frame_average


def _loss(hop_length=80):
    cfg = omegaconf.OmegaConf.create({"frame_periodic": {"hop_length": hop_length}})
    return builders.get_loss("frame_periodic", cfg)


def test_frame_average_against_a_loop():
    x = torch.randn(2, 1, 8030)
    slow = torch.stack([x[..., t * 80:(t + 1) * 80] for t in range(100)]).mean(0)  # the 30 extra samples left out
    assert torch.allclose(frame_average(x, 80), slow, atol=1e-6)


def test_a_buzz_costs_a_hundred_times_more_than_noise_of_the_same_power():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 8000, generator=g)
    noise = 0.1 * torch.randn(4, 1, 8000, generator=g)  # 20 dB below: averages out over 100 frames
    pulses = torch.zeros_like(x)
    pulses[..., 3::80] = 1.
    buzz = pulses * (noise.pow(2).mean() / pulses.pow(2).mean()).sqrt()  # the same power, every frame alike
    loss = _loss()
    assert float(loss(x, x)) == 0.
    assert float(loss(x + buzz, x)) == pytest.approx(0.01, rel=0.05)
    assert float(loss(x + buzz, x)) > 50 * float(loss(x + noise, x))
    # A buzz off the frame grid (period 81) is not the codec's: it averages out too.
    off_grid = torch.zeros_like(x)
    off_grid[..., ::81] = 1.
    off_grid = off_grid * (noise.pow(2).mean() / off_grid.pow(2).mean()).sqrt()
    assert float(loss(x + off_grid, x)) < 0.1 * float(loss(x + buzz, x))


def test_bad_hop_or_short_segments_are_named():
    from audiocraft_mmd.errors import ConfigError
    with pytest.raises(ConfigError, match="frame_periodic.hop_length=1"):
        _loss(1)
    with pytest.raises(ValueError, match="fewer than 2 frames of 80"):
        _loss()(torch.zeros(1, 1, 100), torch.zeros(1, 1, 100))
