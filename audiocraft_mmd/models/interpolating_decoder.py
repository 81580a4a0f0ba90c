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


class StrideAverage(nn.Module):
    """A moving average over ``stride`` samples (no weights, same length out): after a transposed convolution
    of that stride, every output sample sums each tap set once, so a constant input gives a constant output
    whatever the weights, and no pattern repeating every ``stride`` samples survives (its spectrum lies on
    the multiples of the input rate, the average's zeros). Together they are a transposed convolution
    whose kernel is kept a box-smoothed one, as upsampling by repetition then a convolution is."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = (self.stride - 1) // 2
        x = nn.functional.pad(x, (left, self.stride - 1 - left), mode="replicate")
        return nn.functional.avg_pool1d(x, self.stride, stride=1)


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
                          transposed_init: str = "default", transposed_average: bool = False) -> SEANetDecoder:
    """AudioCraft's ``SEANetDecoder(**seanet)`` with its first ``stages`` transposed convolutions (None:
    all) swapped for :class:`InterpolatingUpsample` of the same channels and stride; the transposed
    convolutions left start as :func:`start_as_nearest` with ``transposed_init="nearest"``, and are each
    followed by a :class:`StrideAverage` with ``transposed_average``.

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
    kept = transposed[len(transposed) if stages is None else stages:]
    for index in kept:
        convtr = tp.cast(nn.ConvTranspose1d, tp.cast(StreamableConvTranspose1d, layers[index]).convtr.convtr)
        if transposed_init == "nearest":
            start_as_nearest(convtr)
        if transposed_average:
            layers[index] = nn.Sequential(layers[index], StrideAverage(convtr.stride[0]))
    decoder.model = nn.Sequential(*layers)
    return decoder
