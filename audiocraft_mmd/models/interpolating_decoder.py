"""A SEANet decoder that upsamples by interpolation (``encodec.autoencoder=seanet_interp``).

A transposed convolution of stride s and kernel 2s gives output sample n the taps n mod s: unless
training balances them exactly, the output carries a pattern that repeats every s samples, and the
stack of them one that repeats every hop, heard as a buzz at the frame rate and seen as a comb at
its multiples (Odena et al., 2016, "Deconvolution and checkerboard artifacts"). Interpolating first
and convolving after treats every output sample alike. Same channels, strides, residual blocks and
latent as AudioCraft's ``SEANetDecoder``, so the codec's frame rate and quantizer are unchanged.
"""

import typing as tp

import torch
from torch import nn

from audiocraft.modules import SEANetDecoder
from audiocraft.modules.conv import StreamableConv1d, StreamableConvTranspose1d

UPSAMPLING_MODES = ("linear", "nearest")
TRANSPOSED_INITS = ("default", "nearest")


class InterpolatingUpsample(nn.Module):
    """Upsampling by ``stride`` (``mode`` interpolation), then a convolution of ``2 * stride + 1`` taps."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, mode: str = "linear",
                 norm: str = "none", norm_kwargs: tp.Optional[dict] = None, causal: bool = False,
                 pad_mode: str = "reflect"):
        super().__init__()
        if mode not in UPSAMPLING_MODES:
            raise ValueError(f"upsampling.mode={mode!r}; choose one of {list(UPSAMPLING_MODES)}")
        self.stride, self.mode = stride, mode
        self.conv = StreamableConv1d(in_channels, out_channels, kernel_size=2 * stride + 1, norm=norm,
                                     norm_kwargs=norm_kwargs or {}, causal=causal, pad_mode=pad_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "linear":
            x = nn.functional.interpolate(x, scale_factor=self.stride, mode="linear", align_corners=False)
        else:
            x = x.repeat_interleave(self.stride, dim=-1)
        return self.conv(x)


def start_as_nearest(convtr: nn.ConvTranspose1d) -> None:
    """Makes the kernel constant over each stride-long block of taps (ICNR, Aitken et al., 2017, for
    transposed convolutions): every output phase then sees the same weights, so the layer starts as
    nearest-neighbour upsampling followed by a convolution, with no pattern repeating every stride.
    One tap of each block is kept and repeated: each tap keeps the default initialisation's scale."""
    stride, kernel = convtr.stride[0], convtr.kernel_size[0]
    if kernel % stride:
        raise ValueError(f"upsampling.transposed_init=nearest needs kernels that are multiples of the stride "
                         f"(kernel {kernel}, stride {stride})")
    # Under AudioCraft's weight norm the parameters are v and g (weight = g v / |v|): v takes the blocks, g its norm.
    weight = tp.cast(torch.Tensor, getattr(convtr, "weight_v", convtr.weight))
    with torch.no_grad():
        weight.copy_(weight[..., ::stride].repeat_interleave(stride, dim=-1))
        if hasattr(convtr, "weight_g"):
            tp.cast(torch.Tensor, convtr.weight_g).copy_(torch.norm_except_dim(weight, 2, 0))


def interpolating_decoder(seanet: tp.Dict[str, tp.Any], mode: str = "linear", stages: tp.Optional[int] = None,
                          transposed_init: str = "default") -> SEANetDecoder:
    """AudioCraft's ``SEANetDecoder(**seanet)`` with its first ``stages`` transposed convolutions (None:
    all) swapped for :class:`InterpolatingUpsample` of the same channels and stride; with
    ``transposed_init="nearest"``, the transposed convolutions left start as :func:`start_as_nearest`.

    The first stage's pattern repeats every frame (lines at every multiple of the frame rate); a later
    stage's repeats every few samples (at 8 kHz with strides 5, 4, 4: lines at multiples of 500 Hz and
    2 kHz only). Swapping only the first keeps the later stages' cost (an interpolating stage of stride
    s costs about s times a transposed one) and their reach to high frequencies (linear interpolation
    is a low-pass filter).
    """
    decoder = SEANetDecoder(**seanet)
    norm = seanet.get("norm", "none")
    norm_kwargs = seanet.get("norm_params", {})
    layers = list(decoder.model)
    transposed = [index for index, layer in enumerate(layers) if isinstance(layer, StreamableConvTranspose1d)]
    if stages is not None and not 0 < stages <= len(transposed):
        raise ValueError(f"upsampling.stages={stages}: the decoder has {len(transposed)} upsampling stages")
    if transposed_init not in TRANSPOSED_INITS:
        raise ValueError(f"upsampling.transposed_init={transposed_init!r}; choose one of {list(TRANSPOSED_INITS)}")
    for index in transposed[:stages]:
        layer = tp.cast(StreamableConvTranspose1d, layers[index])
        convtr = tp.cast(nn.ConvTranspose1d, layer.convtr.convtr)
        layers[index] = InterpolatingUpsample(
            convtr.in_channels, convtr.out_channels, stride=convtr.stride[0], mode=mode,
            norm=norm, norm_kwargs=norm_kwargs, causal=layer.causal, pad_mode=seanet.get("pad_mode", "reflect"))
    if transposed_init == "nearest":
        for index in transposed[len(transposed) if stages is None else stages:]:
            layer = tp.cast(StreamableConvTranspose1d, layers[index])
            start_as_nearest(tp.cast(nn.ConvTranspose1d, layer.convtr.convtr))
    decoder.model = nn.Sequential(*layers)
    return decoder
