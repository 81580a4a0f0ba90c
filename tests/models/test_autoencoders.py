"""The codec's encoder-decoder pairs beyond AudioCraft's seanet (models/autoencoders.py)."""

import copy

import hydra
import pytest
import torch

import audiocraft_mmd  # noqa: F401  (patches AudioCraft's model builders)
from audiocraft.models import builders
from audiocraft.modules.conv import StreamableConvTranspose1d

from audiocraft_mmd.utils.paths import CONFIG_DIR

AUTOENCODERS = ["seanet", "seanet_spectral", "seanet_interp", "seanet_spectral_interp"]
UPSAMPLING = ("InterpolatingUpsample", "StreamableConvTranspose1d")


def _config(*overrides):
    with hydra.initialize_config_dir(str(CONFIG_DIR), version_base="1.1"):
        return hydra.compose("config", overrides=["solver=compression/mmd", "device=cpu", *overrides])


@pytest.mark.parametrize("autoencoder", AUTOENCODERS)
def test_every_autoencoder_builds_an_encodec_of_the_same_frame_rate(autoencoder):
    torch.manual_seed(0)
    model = builders.get_compression_model(_config(f"encodec.autoencoder={autoencoder}"))
    x = torch.randn(2, 1, 8000)
    result = model(x)
    assert model.frame_rate == 100 and result.x.shape == x.shape
    codes, scale = model.encode(x)
    assert codes.shape == (2, 4, 100) and model.decode(codes, scale).shape == x.shape
    first_upsampling = next(m for m in model.decoder.model if type(m).__name__ in UPSAMPLING)
    assert isinstance(first_upsampling, StreamableConvTranspose1d) == ("interp" not in autoencoder)


def test_the_spectral_branch_sees_each_hop_in_its_own_frame():
    torch.manual_seed(0)
    encoder = builders.get_compression_model(_config("encodec.autoencoder=seanet_spectral")).encoder
    hop = encoder.hop_length
    for frame in (0, 37, 99):
        x = torch.zeros(1, 1, 100 * hop)
        x[..., frame * hop + hop // 2] = 1.  # an impulse in the middle of frame's hop
        energy = encoder.log_spectrum(x, 100).exp().pow(2).sum(1)[0]
        assert int(energy.argmax()) == frame


def test_interpolation_removes_the_transposed_convolutions_frame_periodic_pattern():
    # A constant latent decodes, through transposed convolutions, to a pattern repeating every hop
    # (the frame-rate buzz); through interpolation, to a signal without one.
    torch.manual_seed(0)
    cfg = _config()
    plain = builders.get_compression_model(cfg).decoder
    every_stage = _config("encodec.autoencoder=seanet_interp", "upsampling.stages=null")
    interp = builders.get_compression_model(every_stage).decoder
    latent = torch.randn(1, 64, 1).expand(1, 64, 60).contiguous()
    with torch.no_grad():
        # Away from the edges, 40 frames of 80 samples.
        y_plain, y_interp = (decoder(latent)[0, 0, 10 * 80:50 * 80].reshape(40, 80) for decoder in (plain, interp))
    periodic = y_plain.mean(0) - y_plain.mean()
    assert float(periodic.pow(2).mean() / (y_plain - y_plain.mean()).pow(2).mean()) > 0.99  # all of it repeats
    assert float(y_interp.std()) < 1e-4 * float(y_plain.std())  # constant in, constant out


def test_transposed_stages_started_as_nearest_have_no_per_stride_pattern():
    # With the first stage interpolating, a constant latent decodes through the later transposed stages to a
    # pattern repeating every few samples (lines at multiples of 500 Hz at 8 kHz); started as nearest-neighbour
    # upsampling, they give a constant.
    latent = torch.randn(1, 64, 1).expand(1, 64, 60).contiguous()
    outputs = {}
    for init in ("default", "nearest"):
        torch.manual_seed(0)
        decoder = builders.get_compression_model(_config(f"upsampling.transposed_init={init}")).decoder
        with torch.no_grad():
            outputs[init] = decoder(latent)[0, 0, 10 * 80:50 * 80]
    assert float(outputs["default"].std()) > 1e-3
    assert float(outputs["nearest"].std()) < 1e-4 * float(outputs["default"].std())


def test_stride_average_keeps_a_constant_latent_constant_whatever_the_weights():
    # Training unbalances the transposed stages' taps (the comb grows with training); with each followed by an
    # average over its stride, a constant latent still decodes to a constant, with any weights.
    latent = torch.randn(1, 64, 1).expand(1, 64, 60).contiguous()
    outputs = {}
    for average in (False, True):
        torch.manual_seed(0)
        decoder = builders.get_compression_model(_config(f"upsampling.transposed_average={average}")).decoder
        with torch.no_grad():
            for parameter in decoder.parameters():  # weights as after training: no structure left
                parameter.add_(0.3 * torch.randn_like(parameter) * parameter.abs().mean())
            outputs[average] = decoder(latent)[0, 0, 10 * 80:50 * 80]
            assert decoder(torch.randn(1, 64, 100)).shape == (1, 1, 8000)  # the same hop
    assert float(outputs[False].std()) > 1e-3
    assert float(outputs[True].std()) < 1e-4 * float(outputs[False].std())


def test_start_as_nearest_keeps_each_taps_scale_and_the_weight_norm_consistent():
    from audiocraft_mmd.models.interpolating_decoder import start_as_nearest
    from audiocraft.modules.conv import NormConvTranspose1d
    torch.manual_seed(0)
    layer = NormConvTranspose1d(16, 8, kernel_size=8, stride=4, norm="weight_norm").convtr
    before = layer.weight_v.detach().clone()
    start_as_nearest(layer)
    blocks = layer.weight_v.reshape(16, 8, 2, 4)
    assert torch.equal(blocks, blocks[..., :1].expand_as(blocks))  # constant over each block of 4 taps
    assert torch.equal(layer.weight_v[..., ::4], before[..., ::4])  # one tap of each block kept
    layer(torch.randn(1, 16, 5))  # weight norm recomputes the weight from g and v
    assert torch.allclose(layer.weight, layer.weight_v)  # g follows v: the weight is the new v


def test_only_the_first_stages_interpolate_when_asked():
    cfg = _config("encodec.autoencoder=seanet_interp", "upsampling.stages=1")
    kinds = [type(m).__name__ for m in builders.get_compression_model(cfg).decoder.model
             if type(m).__name__ in UPSAMPLING]
    assert kinds == ["InterpolatingUpsample", "StreamableConvTranspose1d", "StreamableConvTranspose1d"]


def test_an_unknown_upsampling_mode_names_the_key():
    from audiocraft_mmd.errors import ConfigError
    with pytest.raises(ConfigError, match="upsampling.mode='cubic'"):
        builders.get_compression_model(_config("encodec.autoencoder=seanet_interp", "upsampling.mode=cubic"))
    with pytest.raises(ConfigError, match="spectral_encoder.n_fft=40 is below"):
        builders.get_compression_model(_config("encodec.autoencoder=seanet_spectral", "spectral_encoder.n_fft=40"))
    with pytest.raises(ConfigError, match="upsampling.transposed_init='icnr'"):
        builders.get_compression_model(_config("upsampling.transposed_init=icnr"))
    with pytest.raises(ConfigError, match="upsampling.stages=4: the decoder has 3"):
        builders.get_compression_model(_config("encodec.autoencoder=seanet_interp", "upsampling.stages=4"))


def test_a_trained_spectral_codec_reloads_from_its_state():
    torch.manual_seed(0)
    cfg = _config("encodec.autoencoder=seanet_spectral_interp")
    model = builders.get_compression_model(cfg)
    x = torch.randn(2, 1, 8000)
    model(x)  # initialises the codebooks (k-means on this batch)
    copy_model = builders.get_compression_model(copy.deepcopy(cfg))
    copy_model.load_state_dict(model.state_dict())
    model.eval(), copy_model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).x, copy_model(x).x)
