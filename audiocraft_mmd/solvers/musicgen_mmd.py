"""MusicGen's LM on the tokens of an EnCodec-MMD codec (``solver: musicgen_mmd``).

AudioCraft's :class:`MusicGenSolver`, plus what training on this project's codecs needs:

- **Pattern consistency.** The codec's checkpoint holds its XP config, so the delays its
  independence loss aligned the codebooks with (``mmd.alignment`` / ``mmd.delays``). An LM whose
  ``codebooks_pattern`` implies other delays models a product of marginals the codec was not
  trained to make exact: it is refused at start, unless ``pattern_consistency.allow_mismatch=true``
  (then logged). Codecs trained with ``mmd.weight=0`` (or without the ``mmd`` section) accept any
  pattern, and a ``depth`` LM (joint over each frame's codes) fits any codec (logged).
- **Sizes and audio format from the codec.** ``transformer_lm.n_q`` / ``card``, ``sample_rate`` and
  ``channels`` left null (the defaults) are read from the codec's checkpoint; a value given that
  contradicts the codec is a :class:`ConfigError` naming both values and the codec, raised before
  the data checks or any model is built (:meth:`MMDMusicGenSolver.resolve_config`). The frame rate
  is not a config key: AudioCraft reads it from the codec; the log says how many frames a segment is.
- **Sampling.** ``generate.lm.top_k`` above the codebook size is clipped (``torch.topk`` fails).
- **AudioCraft's FAD / KLD / CLAP** (``evaluate.metrics.*``) from local weights only: the paths in the
  ``metrics`` section are checked at start (:mod:`audiocraft_mmd.metrics.reference_models`).
- **Quality of the generations (opt-in).** With ``generate.music_distance.enabled=true`` the generate
  stage also reports the musicnn Fréchet and kernel distances (with bootstrap intervals) of this
  epoch's unprompted generations to the evaluate split, cut to the generations' length
  (:func:`audiocraft_mmd.metrics.music_distance.distance_to_source`; offline, no download).
"""

from __future__ import annotations

import logging
import typing as tp

import omegaconf

from audiocraft.solvers.musicgen import MusicGenSolver
from audiocraft.utils import checkpoint

from ..errors import ConfigError
from ..registry import register_solver
from ..patterns import build_pattern_provider, fits_any_alignment, pattern_alignment_delays, pattern_kwargs

logger = logging.getLogger(__name__)


def read_codec_config(reference: tp.Optional[str]) -> tp.Optional[omegaconf.DictConfig]:
    """The XP config saved in a codec checkpoint (``//sig/SIG`` or a path); None for ``//pretrained/``.

    Raises:
        ConfigError: When ``compression_model_checkpoint`` is unset or does not resolve.
    """
    if not reference:
        raise ConfigError("compression_model_checkpoint is required: //sig/SIG of a compression XP, "
                          "a checkpoint path, or //pretrained/NAME.")
    reference = str(reference)
    if reference.startswith("//pretrained/"):
        return None
    path = checkpoint.resolve_checkpoint_path(reference, use_fsdp=False)
    if path is None:
        raise ConfigError(f"compression_model_checkpoint={reference} does not resolve to a checkpoint file.")
    state = checkpoint.load_checkpoint(path)
    if state is None or "xp.cfg" not in state:
        raise ConfigError(f"compression_model_checkpoint={reference}: {path} holds no XP config.")
    cfg = state["xp.cfg"]
    if isinstance(cfg, str):  # exported models hold it as YAML
        cfg = omegaconf.OmegaConf.create(cfg)
        if not isinstance(cfg, omegaconf.DictConfig):
            raise ConfigError(f"compression_model_checkpoint={reference}: the XP config in {path} is not a mapping.")
    return cfg


def codec_num_codebooks(codec_cfg: omegaconf.DictConfig) -> int:
    return int(codec_cfg.rvq.n_q)


def codec_loss_delays(codec_cfg: omegaconf.DictConfig, num_codebooks: int) -> tp.Optional[tp.List[int]]:
    """Delays of the codec's independence loss; None when the codec was trained without it."""
    mmd_cfg = codec_cfg.get("mmd")
    if mmd_cfg is None or not mmd_cfg.get("weight"):
        return None
    from .compression_mmd import alignment_delays
    return alignment_delays(mmd_cfg, num_codebooks)


def check_pattern_consistency(cfg: omegaconf.DictConfig, codec_cfg: tp.Optional[omegaconf.DictConfig]) -> None:
    """Refuses an LM pattern whose delays differ from the codec loss's (see module docstring).

    Raises:
        ConfigError: On a mismatch without ``pattern_consistency.allow_mismatch``.
    """
    n_q = int(cfg.compression_model_n_q or cfg.transformer_lm.n_q)
    provider = build_pattern_provider(n_q, cfg.codebooks_pattern)
    name, _, kwargs = pattern_kwargs(cfg.codebooks_pattern)
    if fits_any_alignment(provider):
        logger.info("Pattern %r models each frame's codes jointly (depth transformer): consistent with "
                    "any codec alignment, pattern consistency not needed.", name)
        return
    if codec_cfg is None:
        logger.info("Codec %s has no saved XP config: pattern consistency not checked.",
                    cfg.compression_model_checkpoint)
        return
    codec_delays = codec_loss_delays(codec_cfg, codec_num_codebooks(codec_cfg))
    if codec_delays is None:
        logger.info("Codec trained without the independence loss (mmd.weight=0): any pattern is consistent.")
        return
    codec_delays = codec_delays[:n_q]
    lm_delays = pattern_alignment_delays(provider, kwargs)
    if lm_delays == codec_delays:
        logger.info("Pattern %r (delays %s) matches the codec's loss alignment.", name, lm_delays)
        return
    message = (f"codebooks_pattern.modeling={name!r} implies delays {lm_delays}, but the codec "
               f"{cfg.compression_model_checkpoint} was trained with loss delays {codec_delays} "
               f"(mmd.alignment={codec_cfg.mmd.alignment!r}, mmd.delays={codec_cfg.mmd.delays}).")
    if cfg.get("pattern_consistency", {}).get("allow_mismatch", False):
        logger.warning("%s Training anyway: pattern_consistency.allow_mismatch=true.", message)
        return
    raise ConfigError(f"{message} Use a pattern with these delays, a codec trained with the pattern's "
                      "alignment, or pattern_consistency.allow_mismatch=true.")


# The audio format keys of an LM config that the codec fixes (null = the codec's).
AUDIO_FORMAT_KEYS = ("sample_rate", "channels")


def codec_audio_format(codec_cfg: omegaconf.DictConfig) -> tp.Dict[str, int]:
    """The codec's ``sample_rate`` and ``channels`` (from its saved XP config)."""
    return {key: int(codec_cfg[key]) for key in AUDIO_FORMAT_KEYS}


def check_audio_format(given: tp.Mapping[str, tp.Any], codec_cfg: tp.Optional[omegaconf.DictConfig],
                       reference: str) -> None:
    """Refuses ``sample_rate`` / ``channels`` values in ``given`` that differ from the codec's.

    Null values are not checked (they mean "the codec's"); nor is anything for a codec without a saved
    config (``//pretrained/``), which AudioCraft checks when it loads it.

    Raises:
        ConfigError: Naming the key, both values and the codec reference.
    """
    if codec_cfg is None:
        return
    codec = codec_audio_format(codec_cfg)
    for key in AUDIO_FORMAT_KEYS:
        value = given.get(key)
        if value is not None and int(value) != codec[key]:
            raise ConfigError(f"{key}={value} contradicts the codec {reference}, whose {key} is {codec[key]}. "
                              f"Leave {key} unset (the LM takes the codec's), or set {key}={codec[key]}.")


def fill_audio_format(cfg: omegaconf.DictConfig, codec_cfg: tp.Optional[omegaconf.DictConfig]) -> None:
    """Sets ``sample_rate`` / ``channels`` from the codec when null; refuses values that contradict it.

    Raises:
        ConfigError: See :func:`check_audio_format`; or a null value with a ``//pretrained/`` codec.
    """
    reference = str(cfg.compression_model_checkpoint)
    if codec_cfg is None:
        missing = [key for key in AUDIO_FORMAT_KEYS if cfg.get(key) is None]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} must be set for the codec {reference}: it has no saved "
                              "XP config to read them from.")
        return
    check_audio_format(cfg, codec_cfg, reference)
    for key, value in codec_audio_format(codec_cfg).items():
        if cfg.get(key) is None:
            cfg[key] = value
            logger.info("%s=%d, the codec's (%s).", key, value, reference)


def fill_lm_sizes(cfg: omegaconf.DictConfig, codec_cfg: tp.Optional[omegaconf.DictConfig]) -> None:
    """Sets ``transformer_lm.n_q`` / ``card`` from the codec when they are null."""
    if codec_cfg is None:
        if cfg.transformer_lm.n_q is None or cfg.transformer_lm.card is None:
            raise ConfigError("transformer_lm.n_q and transformer_lm.card must be set for a //pretrained/ codec.")
        return
    if cfg.transformer_lm.n_q is None:
        cfg.transformer_lm.n_q = int(cfg.compression_model_n_q or codec_num_codebooks(codec_cfg))
    if cfg.transformer_lm.card is None:
        cfg.transformer_lm.card = int(codec_cfg.rvq.bins)


@register_solver("musicgen_mmd")
class MMDMusicGenSolver(MusicGenSolver):
    """MusicGen solver checking the LM's pattern against the codec's independence-loss alignment.

    Config: ``solver/musicgen/mmd.yaml``; ``pattern_consistency.allow_mismatch`` switches the check
    to a warning.
    """

    @staticmethod
    def resolve_config(cfg: omegaconf.DictConfig) -> None:
        """Checks the metrics' weights, fills what the codec fixes (sample rate, channels, LM sizes) and
        checks the pattern, before anything is built: :func:`audiocraft_mmd.train.get_solver` calls it ahead of
        the data checks, which need the sample rate. Idempotent.

        Raises:
            ConfigError: A value that contradicts the codec, or an inconsistent pattern.
        """
        from ..metrics.reference_models import check_reference_metrics
        check_reference_metrics(cfg)  # FAD / KLD / CLAP: local weights or a clear error, before any work
        codec_cfg = read_codec_config(cfg.compression_model_checkpoint)
        fill_audio_format(cfg, codec_cfg)
        fill_lm_sizes(cfg, codec_cfg)
        check_pattern_consistency(cfg, codec_cfg)

    def __init__(self, cfg: omegaconf.DictConfig):
        self.resolve_config(cfg)  # again, for solvers built without train.get_solver
        super().__init__(cfg)
        # Checkpoints store the XP's config: record the values read from the codec there too, so
        # that AudioCraft's loaders rebuild the LM from the checkpoint alone.
        if self.xp.cfg is not cfg:
            for key in AUDIO_FORMAT_KEYS:
                self.xp.cfg[key] = cfg[key]
            self.xp.cfg.transformer_lm.n_q = cfg.transformer_lm.n_q
            self.xp.cfg.transformer_lm.card = cfg.transformer_lm.card
        self.logger.info("Segments of %g s are %g frames of the codec's %g Hz.", self.cfg.dataset.segment_duration,
                         self.cfg.dataset.segment_duration * self.compression_model.frame_rate,
                         self.compression_model.frame_rate)
        options = self.cfg.generate.get("music_distance") or {}
        if options.get("enabled"):
            from ..metrics.musicnn import package_checkpoint
            package_checkpoint(str(options.get("model", "MSD_musicnn")))  # fail now, not after an epoch
        card = int(self.cfg.transformer_lm.card)
        if self.generation_params["top_k"] > card:
            self.logger.info("generate.lm.top_k=%d clipped to the codebook size %d.",
                             self.generation_params["top_k"], card)
            self.generation_params["top_k"] = card

    def generate_audio(self) -> dict:
        """AudioCraft's generate stage, plus the distance of the generations to the evaluate split."""
        metrics = super().generate_audio()
        options = self.cfg.generate.get("music_distance") or {}
        if options.get("enabled"):
            from ..data.sources import AudioSourceError
            from ..metrics.music_distance import MusicDistanceError
            try:
                metrics.update(self.generation_distance(options))
            except (AudioSourceError, MusicDistanceError) as error:  # e.g. a silent generation of an untrained LM
                self.logger.warning("No distance of the generations to the evaluate split: %s", error)
        return metrics

    def generation_distance(self, options: tp.Any) -> tp.Dict[str, float]:
        """musicnn distances of this epoch's unprompted samples (all samples if none) to the evaluate split."""
        from audiocraft.utils.samples.manager import SampleManager
        from ..metrics.music_distance import distance_to_source
        samples = SampleManager(self.xp).get_samples(epoch=self.epoch, exclude_prompted=True) \
            or SampleManager(self.xp).get_samples(epoch=self.epoch)
        clips = [(sample.path, *sample.audio()) for sample in sorted(samples, key=lambda sample: sample.path)]
        reference = options.get("reference") or self.cfg.datasource.evaluate
        self.logger.info("Distance of %d generations to %s (musicnn)", len(clips), reference)
        return distance_to_source(clips, str(reference), model=str(options.get("model", "MSD_musicnn")),
                                  max_pieces=int(options.get("max_pieces", 8)),
                                  draws=int(options.get("bootstrap", 100)), device=self.device)
