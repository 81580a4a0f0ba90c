"""A loss on the part of the error that repeats every codec frame (``losses.frame_periodic``).

A decoder that upsamples with transposed convolutions turns each frame's latent into samples with
taps that depend on the sample's position within the frame; unless the taps balance, the output
carries a waveform that repeats every hop in phase with the frame grid: a buzz at the frame rate,
lines at its multiples. The waveform and mel terms barely see it (it is a small share of the error,
spread over wide mel bands). Averaging the error's frames keeps exactly that part (the rest averages
out over a segment's frames); this loss is its power relative to the reference's.
"""

import torch
from torch import nn

from ..registry import register_loss


def frame_average(x: torch.Tensor, hop_length: int) -> torch.Tensor:
    """``[B, C, hop_length]``: the mean of ``x``'s whole frames of ``hop_length`` samples, from sample 0."""
    frames = x.shape[-1] // hop_length
    if frames < 2:
        raise ValueError(f"frame_periodic: a segment of {x.shape[-1]} samples holds fewer than 2 frames of "
                         f"{hop_length} samples")
    return x[..., :frames * hop_length].reshape(*x.shape[:-1], frames, hop_length).mean(-2)


@register_loss("frame_periodic")
class FramePeriodicLoss(nn.Module):
    """``|frame_average(y - x)|^2 / |x|^2``, per item, averaged over the batch.

    Args:
        hop_length: The codec's hop (samples per frame; the encoder's strides multiplied).
        floor: Added to the reference's power, so that silence does not divide by zero.
    """

    def __init__(self, hop_length: int, floor: float = 1e-8):
        super().__init__()
        if hop_length < 2:
            raise ValueError(f"frame_periodic.hop_length={hop_length}: a frame needs at least 2 samples")
        self.hop_length, self.floor = hop_length, floor

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        periodic = frame_average(y - x, self.hop_length).pow(2).mean(dim=(-2, -1))
        return (periodic / (x.pow(2).mean(dim=(-2, -1)) + self.floor)).mean()
