"""What an LM trained on a codec's tokens measures, for comparing codebook patterns on one budget.

One :class:`Cell` per codec x pattern: the LM's validation cross-entropy (total and per codebook,
nats), its autoregressive steps per second of audio (for ``depth``, the temporal steps plus the
per-frame depth steps), the wall-clock of generating clips (LM sampling + decoding) and its
real-time factor, and the musicnn distances of the generations to the LM's evaluate split.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
import time
import typing as tp

import omegaconf
import torch

from ..utils.checkpoints import resolved_xp_config
from ..utils.xps import read_history

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Cell:
    """One codec x pattern result."""
    codec: str
    pattern: str
    sig: str
    consistent: bool
    valid_ce: float
    valid_ce_per_codebook: tp.List[float]
    steps_per_second: float  # temporal + depth
    gen_seconds: float
    rtf: float
    lm_params: int
    kernel_distance: tp.Optional[float] = None
    frechet_distance: tp.Optional[float] = None
    distances: tp.Optional[tp.Dict[str, float]] = None
    temporal_steps_per_second: tp.Optional[float] = None  # transformer steps over frames (None: older results)
    depth_steps_per_second: float = 0.  # per-frame depth-transformer steps (``depth`` pattern only)
    frame_rate: tp.Optional[float] = None  # the codec's frames per second (None: older results)
    lm_seed: tp.Optional[int] = None  # the LM XP's training seed (None: older results)


def lm_overrides(codec: str, pattern: str, extra: tp.Sequence[str], solver: str = "musicgen/mmd") -> tp.List[str]:
    """The Dora overrides of one cell's LM XP (see module docstring).

    Raises:
        ConfigError: When ``extra`` (or the solver's config) sets a ``sample_rate`` or ``channels``
            that contradicts the codec, before any XP is trained.
    """
    from .. import train
    from ..patterns import build_pattern_provider, fits_any_alignment, pattern_alignment_delays
    from ..solvers.musicgen_mmd import check_audio_format, codec_loss_delays, codec_num_codebooks, read_codec_config
    overrides = [f"solver={solver}", f"compression_model_checkpoint={codec}",
                 f"codebooks_pattern.modeling={pattern}", *extra]
    codec_cfg = read_codec_config(codec)
    check_audio_format(train.main.get_xp(overrides).cfg, codec_cfg, codec)
    if codec_cfg is not None:
        n_q = codec_num_codebooks(codec_cfg)
        delays = codec_loss_delays(codec_cfg, n_q)
        provider = build_pattern_provider(n_q, omegaconf.OmegaConf.create({"modeling": pattern}))
        if delays is not None and not fits_any_alignment(provider) and pattern_alignment_delays(provider) != delays:
            overrides.append("pattern_consistency.allow_mismatch=true")
    return overrides


def load_lm(xp_folder: Path, device: str = "cpu"):
    """The LM of a finished MusicGen XP (best state) and its config."""
    from audiocraft.models import builders
    state = torch.load(xp_folder / "checkpoint.th", map_location="cpu", weights_only=True)
    cfg = resolved_xp_config(state)
    cfg.device = device
    cfg.dtype = "float32"
    if cfg.transformer_lm.n_q is None or cfg.transformer_lm.card is None:  # LM XPs of an older solver
        from ..solvers.musicgen_mmd import fill_lm_sizes, read_codec_config
        fill_lm_sizes(cfg, read_codec_config(cfg.compression_model_checkpoint))
    lm = builders.get_lm_model(cfg)
    lm.load_state_dict(state["best_state"]["model"])
    return lm.eval(), cfg


# Whether this process has generated once: its first generation runs far slower than the next ones (measured on an
# unroll LM, 4 clips of 6 s on 2 threads: 68 s, then 39 s; a second LM then took its usual time at once).
_warmed_up = False


@torch.no_grad()
def time_generation(lm, codec, num_samples: int, duration: float, seed: int) -> tp.Tuple[float, torch.Tensor]:
    """Wall-clock (s) of sampling ``num_samples`` x ``duration`` s and decoding them, and the audio. The process's
    first call generates once untimed before, so that no LM pays the process's start-up."""
    global _warmed_up
    if not _warmed_up:
        _warmed_up = True
        time_generation(lm, codec, num_samples, duration, seed)
    from audiocraft.modules.conditioners import ConditioningAttributes
    torch.manual_seed(seed)
    frames = int(round(duration * codec.frame_rate))
    attributes = [ConditioningAttributes(text={"description": None}) for _ in range(num_samples)]
    start = time.perf_counter()
    tokens = lm.generate(None, attributes, max_gen_len=frames, use_sampling=True, top_k=250)
    audio = codec.decode(tokens, None)
    return time.perf_counter() - start, audio


def measure_lm(codec: str, pattern: str, xp, gen_samples: int, gen_duration: float, seed: int,
               distance: bool = True) -> Cell:
    """The :class:`Cell` of a finished LM XP on ``codec``'s tokens.

    Args:
        codec: The codec reference (``//sig/SIG``, a checkpoint) the LM was trained on.
        pattern: The LM's codebook pattern.
        xp: The LM's Dora XP.
        gen_samples: Clips generated (timed, and compared with the evaluate split when at least 2).
        gen_duration: Seconds per clip.
        seed: Generation seed.
        distance: Also the musicnn distances of the generations to the evaluate split.
    """
    from audiocraft.solvers.compression import CompressionSolver
    from ..patterns import depth_steps, sequence_steps
    valid = read_history(xp.folder)[-1]["valid"]
    lm, cfg = load_lm(xp.folder)
    compression = CompressionSolver.model_from_checkpoint(codec, device="cpu")
    frames = int(round(gen_duration * compression.frame_rate))
    temporal_steps = sequence_steps(lm.pattern_provider, frames)
    steps_in_depth = depth_steps(lm.pattern_provider, frames)
    wall, audio = time_generation(lm, compression, gen_samples, gen_duration, seed)
    num_q = int(cfg.transformer_lm.n_q)
    distances = None
    if not distance or gen_samples < 2:
        logger.info("No distance of the generations to the evaluate split (not asked for, or fewer than 2 clips).")
    else:
        from ..data.sources import AudioSourceError
        from .music_distance import MusicDistanceError, distance_to_source
        clips = [(f"{xp.sig}_{i}", wav.cpu(), int(compression.sample_rate)) for i, wav in enumerate(audio)]
        try:
            distances = distance_to_source(clips, str(cfg.datasource.evaluate), draws=100)
        except (AudioSourceError, MusicDistanceError) as error:  # e.g. a silent generation: the table says "-"
            logger.warning("%s %s: no distance to the evaluate split: %s", codec, pattern, error)
    return Cell(codec=codec, pattern=pattern, sig=xp.sig,
                consistent="pattern_consistency.allow_mismatch=true" not in xp.argv,
                valid_ce=float(valid["ce"]), valid_ce_per_codebook=[float(valid[f"ce_q{k + 1}"]) for k in range(num_q)],
                steps_per_second=(temporal_steps + steps_in_depth) / gen_duration,
                temporal_steps_per_second=temporal_steps / gen_duration,
                depth_steps_per_second=steps_in_depth / gen_duration, gen_seconds=wall,
                frame_rate=float(compression.frame_rate), lm_seed=int(cfg.seed),
                rtf=wall / (gen_samples * gen_duration),
                lm_params=sum(p.numel() for p in lm.parameters()),
                kernel_distance=distances["musicnn_kernel"] if distances else None,
                frechet_distance=distances["musicnn_frechet"] if distances else None, distances=distances)


def steps_text(total: float, temporal: tp.Optional[float] = None, depth: tp.Optional[float] = None) -> str:
    """AR steps per second of audio; for an LM with depth steps, also their split (temporal + depth)."""
    if not depth:
        return f"{total:.0f}"
    return f"{total:.0f} ({temporal:.0f} + {depth:.0f})"


