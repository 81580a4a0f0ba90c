"""MusicGen's LM on the tokens of an EnCodec-MMD codec (``solver: musicgen_mmd``).

AudioCraft's :class:`MusicGenSolver`, plus what training on this project's codecs needs:

- **Pattern consistency.** The codec's checkpoint holds its XP config, so the delays its
  independence loss aligned the codebooks with (``mmd.alignment`` / ``mmd.delays``). An LM whose
  ``codebooks_pattern`` implies other delays models a product of marginals the codec was not
  trained to make exact: it is refused at start, unless ``pattern_consistency.allow_mismatch=true``
  (then logged). Codecs trained with ``mmd.weight=0`` (or without the ``mmd`` section) accept any
  pattern, and a ``depth`` LM (joint over each frame's codes) fits any codec (logged).
- **Sizes from the codec.** ``transformer_lm.n_q`` / ``card`` left null are read from the codec.
- **Sampling.** ``generate.lm.top_k`` above the codebook size is clipped (``torch.topk`` fails).
- **AudioCraft's FAD / KLD / CLAP** (``evaluate.metrics.*``) from local weights only: the paths in the
  ``metrics`` section are checked at start (:mod:`audiocraft_mmd.metrics.reference_models`).
- **Quality of the generations (opt-in).** With ``generate.music_distance.enabled=true`` the generate
  stage also reports the musicnn Fréchet and kernel distances (with bootstrap intervals) of this
  epoch's unprompted generations to the evaluate split, cut to the generations' length
  (:func:`audiocraft_mmd.audio_distance.distance_to_source`; offline, no download).
"""

from __future__ import annotations

import logging
import typing as tp

import omegaconf

from audiocraft.solvers.musicgen import MusicGenSolver
from audiocraft.utils import checkpoint

from ..errors import ConfigError
from ..integration import register_solver
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
    return omegaconf.OmegaConf.create(cfg) if isinstance(cfg, str) else cfg


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

    def __init__(self, cfg: omegaconf.DictConfig):
        from ..metrics.reference_models import check_reference_metrics
        check_reference_metrics(cfg)  # FAD / KLD / CLAP: local weights or a clear error, before any work
        codec_cfg = read_codec_config(cfg.compression_model_checkpoint)
        fill_lm_sizes(cfg, codec_cfg)
        check_pattern_consistency(cfg, codec_cfg)
        super().__init__(cfg)
        # Checkpoints store the XP's config: record the sizes read from the codec there too, so
        # that AudioCraft's loaders rebuild the LM from the checkpoint alone.
        xp_lm = self.xp.cfg.transformer_lm
        if xp_lm is not cfg.transformer_lm:
            xp_lm.n_q, xp_lm.card = cfg.transformer_lm.n_q, cfg.transformer_lm.card
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
            from ..audio_distance import AudioDistanceError
            try:
                metrics.update(self.generation_distance(options))
            except AudioDistanceError as error:  # e.g. a silent generation of an untrained LM
                self.logger.warning("No distance of the generations to the evaluate split: %s", error)
        return metrics

    def generation_distance(self, options: tp.Any) -> tp.Dict[str, float]:
        """musicnn distances of this epoch's unprompted samples (all samples if none) to the evaluate split."""
        from audiocraft.utils.samples.manager import SampleManager
        from ..audio_distance import distance_to_source
        samples = SampleManager(self.xp).get_samples(epoch=self.epoch, exclude_prompted=True) \
            or SampleManager(self.xp).get_samples(epoch=self.epoch)
        clips = [(sample.path, *sample.audio()) for sample in sorted(samples, key=lambda sample: sample.path)]
        reference = options.get("reference") or self.cfg.datasource.evaluate
        self.logger.info("Distance of %d generations to %s (musicnn)", len(clips), reference)
        return distance_to_source(clips, str(reference), model=str(options.get("model", "MSD_musicnn")),
                                  max_pieces=int(options.get("max_pieces", 8)),
                                  draws=int(options.get("bootstrap", 100)), device=self.device)
