"""The codec's encoder-decoder pairs beyond AudioCraft's ``seanet`` (``encodec.autoencoder=<name>``).

Each reads AudioCraft's ``seanet:`` section as ``seanet`` does (shared keys, then ``encoder:`` and
``decoder:`` overrides) plus its own section: ``spectral_encoder:`` (``n_fft``, ``hidden``) for the
log-spectrum branch of :mod:`.spectral_encoder`, ``upsampling:`` (``mode``) for the interpolating
decoder of :mod:`.interpolating_decoder`. The codec stays an AudioCraft ``EncodecModel``: checkpoints
load wherever AudioCraft loads one, once this package is imported.
"""

import typing as tp

import omegaconf
from torch import nn

from ..errors import ConfigError
from ..registry import register_autoencoder


def _seanet_kwargs(cfg: omegaconf.DictConfig) -> tp.Tuple[dict, dict]:
    from audiocraft.utils.utils import dict_from_config
    kwargs = dict_from_config(cfg.seanet)
    encoder, decoder = kwargs.pop("encoder"), kwargs.pop("decoder")
    return {**kwargs, **encoder}, {**kwargs, **decoder}


def _section(cfg: omegaconf.DictConfig, name: str, autoencoder: str) -> dict:
    from audiocraft.utils.utils import dict_from_config
    section = cfg.get(name)
    if section is None:
        raise ConfigError(f"encodec.autoencoder={autoencoder} needs a `{name}:` config section "
                          "(see config/model/encodec/music_8khz.yaml)")
    return dict_from_config(section)


def _spectral_encoder(cfg: omegaconf.DictConfig, seanet: dict, autoencoder: str) -> nn.Module:
    from .spectral_encoder import SpectralSEANetEncoder
    try:
        return SpectralSEANetEncoder(seanet, **_section(cfg, "spectral_encoder", autoencoder))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"spectral_encoder: {error}") from error


def _interpolating_decoder(cfg: omegaconf.DictConfig, seanet: dict, autoencoder: str) -> nn.Module:
    from .interpolating_decoder import interpolating_decoder
    try:
        return interpolating_decoder(seanet, **_section(cfg, "upsampling", autoencoder))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"upsampling: {error}") from error


@register_autoencoder("seanet_spectral")
def seanet_spectral(cfg: omegaconf.DictConfig) -> tp.Tuple[nn.Module, nn.Module]:
    """The log-spectrum-branch encoder and AudioCraft's SEANet decoder."""
    from audiocraft.modules import SEANetDecoder
    encoder, decoder = _seanet_kwargs(cfg)
    return _spectral_encoder(cfg, encoder, "seanet_spectral"), SEANetDecoder(**decoder)


@register_autoencoder("seanet_interp")
def seanet_interp(cfg: omegaconf.DictConfig) -> tp.Tuple[nn.Module, nn.Module]:
    """AudioCraft's SEANet encoder and the interpolating decoder."""
    from audiocraft.modules import SEANetEncoder
    encoder, decoder = _seanet_kwargs(cfg)
    return SEANetEncoder(**encoder), _interpolating_decoder(cfg, decoder, "seanet_interp")


@register_autoencoder("seanet_spectral_interp")
def seanet_spectral_interp(cfg: omegaconf.DictConfig) -> tp.Tuple[nn.Module, nn.Module]:
    """The log-spectrum-branch encoder and the interpolating decoder."""
    encoder, decoder = _seanet_kwargs(cfg)
    return (_spectral_encoder(cfg, encoder, "seanet_spectral_interp"),
            _interpolating_decoder(cfg, decoder, "seanet_spectral_interp"))
