"""Exports a codec (and an LM) into a folder that AudioCraft's ``get_pretrained`` loads offline.

    python -m audiocraft_mmd.export --codec //sig/SIG --out exported/my_codec
    python -m audiocraft_mmd.export --lm //sig/LM_SIG --out exported/my_musicgen   # codec from the LM's XP

The folder holds ``compression_state_dict.bin`` (and ``state_dict.bin`` for an LM), in the format of
``audiocraft.utils.export``: ``CompressionModel.get_pretrained(folder)`` and
``MusicGen.get_pretrained(folder)`` load it with no network (``import audiocraft_mmd`` first, so
that our patterns resolve). Pitfalls handled here rather than in AudioCraft:

- MusicGen's ``max_duration`` is the LM's ``dataset.segment_duration``, and ``MusicGen.__init__``
  asserts it exceeds its default ``extend_stride`` (18 s): LMs trained on short segments could not
  be loaded. The exported config sets it to ``--max-duration`` (default 30 s; the LM's positional
  embedding extrapolates) and keeps the trained value as ``exported.trained_segment_duration``.
- An unconditional LM's ``conditioners: null`` becomes ``{}`` (``load_lm_model`` walks that section).
- ``--lm`` with another ``--codec`` than the LM's own: the codec must have the LM's sample rate,
  channels, number of codebooks and codebook size, else a :class:`ConfigError` naming both values,
  before anything is written.
- Everything written is a plain dict of tensors, strings and numbers (the config as YAML), so it
  loads under torch's ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
import typing as tp

import omegaconf
import torch

from .errors import ConfigError
from .utils.checkpoints import EXPORTED_CODEC, load_solver_checkpoint, resolved_xp_config
from .utils.progress import Progress

logger = logging.getLogger(__name__)

LM_FILE = "state_dict.bin"


def _package(state: dict, cfg: omegaconf.DictConfig) -> dict:
    from audiocraft import __version__
    best = state.get("fsdp_best_state") or state["best_state"]
    return {"best_state": best["model"], "xp.cfg": omegaconf.OmegaConf.to_yaml(cfg),
            "version": __version__, "exported": True}


def export_codec(reference: str, out: tp.Union[str, Path]) -> Path:
    """Writes ``<out>/compression_state_dict.bin`` from a compression XP's checkpoint."""
    state = load_solver_checkpoint(reference)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(_package(state, state["xp.cfg"]), out / EXPORTED_CODEC)
    logger.info("Codec %s exported to %s", reference, out / EXPORTED_CODEC)
    return out / EXPORTED_CODEC


def fill_from_codec(cfg: omegaconf.DictConfig) -> None:
    """Fills an LM config's null sizes and audio format from its training codec (XPs of older solvers)."""
    from .solvers.musicgen_mmd import AUDIO_FORMAT_KEYS, fill_audio_format, fill_lm_sizes, read_codec_config
    if cfg.transformer_lm.n_q is None or cfg.transformer_lm.card is None or \
            any(cfg.get(key) is None for key in AUDIO_FORMAT_KEYS):
        codec_cfg = read_codec_config(cfg.compression_model_checkpoint)
        fill_lm_sizes(cfg, codec_cfg)
        fill_audio_format(cfg, codec_cfg)


def check_lm_codec(lm: str, codec: str) -> None:
    """Refuses to export the LM ``lm`` beside a ``codec`` whose format or token sizes are not the LM's.

    Raises:
        ConfigError: Naming the key, both values and both references.
    """
    from .solvers.musicgen_mmd import check_audio_format, read_codec_config
    codec_cfg = read_codec_config(codec)
    if codec_cfg is None:  # //pretrained/: AudioCraft checks what it loads
        return
    cfg = resolved_xp_config(load_solver_checkpoint(lm))
    fill_from_codec(cfg)
    try:
        check_audio_format(cfg, codec_cfg, codec)
    except ConfigError as error:
        raise ConfigError(f"--lm {lm} cannot be exported with --codec {codec}: {error}") from None
    sizes = {"card": codec_cfg.rvq.bins}
    if cfg.get("compression_model_n_q") is None:  # an LM on fewer codebooks than its codec's is AudioCraft's case
        sizes["n_q"] = codec_cfg.rvq.n_q
    for key, codec_value in sizes.items():
        if int(cfg.transformer_lm[key]) != int(codec_value):
            raise ConfigError(f"--lm {lm} cannot be exported with --codec {codec}: the LM's transformer_lm.{key} "
                              f"is {cfg.transformer_lm[key]}, the codec's is {codec_value}.")


def export_lm(reference: str, out: tp.Union[str, Path], max_duration: float = 30.) -> Path:
    """Writes ``<out>/state_dict.bin`` from a MusicGen XP's checkpoint (see module docstring)."""
    state = load_solver_checkpoint(reference)
    cfg = resolved_xp_config(state)
    omegaconf.OmegaConf.set_struct(cfg, False)
    fill_from_codec(cfg)
    trained = float(cfg.dataset.segment_duration)
    cfg.exported = {"trained_segment_duration": trained, "source": str(reference)}
    cfg.dataset.segment_duration = max(trained, float(max_duration))
    if cfg.get("conditioners") is None:
        cfg.conditioners = {}  # AudioCraft's load_lm_model walks this section and fails on null
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(_package(state, cfg), out / LM_FILE)
    logger.info("LM %s exported to %s (max_duration %.1f s, trained on %.1f s segments)",
                reference, out / LM_FILE, cfg.dataset.segment_duration, trained)
    return out / LM_FILE


def export(out: tp.Union[str, Path], codec: tp.Optional[str] = None, lm: tp.Optional[str] = None,
           max_duration: float = 30.) -> Path:
    """Exports ``codec`` and/or ``lm`` into ``out``; with only ``lm``, its training codec is exported too."""
    if codec is None and lm is None:
        raise ConfigError("Give --codec and/or --lm.")
    counter = Progress(2 if lm is not None else 1, "export")
    if lm is not None:
        if codec is not None:
            check_lm_codec(lm, codec)
        export_lm(lm, out, max_duration=max_duration)
        counter.step(f"LM {lm}")
        if codec is None:
            codec = str(load_solver_checkpoint(lm)["xp.cfg"].compression_model_checkpoint)
    assert codec is not None
    if codec.startswith("//pretrained/"):
        from audiocraft.utils.export import export_pretrained_compression_model
        export_pretrained_compression_model(codec[len("//pretrained/"):], Path(out) / EXPORTED_CODEC)
    else:
        export_codec(codec, out)
    counter.step(f"codec {codec}")
    counter.close()
    return Path(out)


def main(argv: tp.Optional[tp.List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.export", description=__doc__.split("\n")[0])
    parser.add_argument("--codec", help="//sig/SIG, XP folder or checkpoint of a compression XP")
    parser.add_argument("--lm", help="//sig/SIG, XP folder or checkpoint of a MusicGen XP "
                                     "(its codec is exported too unless --codec is given)")
    parser.add_argument("--out", required=True, help="folder to write (get_pretrained loads it)")
    parser.add_argument("--max-duration", type=float, default=30.,
                        help="MusicGen max_duration recorded in the export (> 18 s, MusicGen's extend_stride)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    folder = export(args.out, codec=args.codec, lm=args.lm, max_duration=args.max_duration)
    print(folder)


if __name__ == "__main__":
    main()
