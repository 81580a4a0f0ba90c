"""Pattern providers from ``codebooks_pattern`` config sections, checked, and what a pattern implies.

AudioCraft's builder looks the name up in a literal dict (a KeyError for a typo) and reads the
arguments from ``codebooks_pattern.<name>`` only if that block exists: a block under any other key
(e.g. ``music_lm:`` in AudioCraft's own ``musicgen_lm.yaml``, while the provider is ``musiclm``) is
silently ignored, and so is a misspelt argument until the provider's constructor meets it. Here
each of those is a :class:`~audiocraft_mmd.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import inspect
import typing as tp

import omegaconf

from ..errors import ConfigError
from ..registry import PATTERNS

SECTION = "codebooks_pattern"


def audiocraft_patterns() -> tp.Dict[str, type]:
    """AudioCraft 1.3.0's pattern names, as its builder's literal dict maps them."""
    from audiocraft.modules import codebooks_patterns as cp
    return {
        "parallel": cp.ParallelPatternProvider,
        "delay": cp.DelayedPatternProvider,
        "unroll": cp.UnrolledPatternProvider,
        "coarse_first": cp.CoarseFirstPattern,
        "musiclm": cp.MusicLMPattern,
    }


def known_patterns() -> tp.Dict[str, type]:
    """Every pattern name ``codebooks_pattern.modeling`` accepts: ours first, then AudioCraft's."""
    from . import depth, grouped_delay  # noqa: F401  (register this package's patterns)
    return {**audiocraft_patterns(), **PATTERNS}


def _accepted_kwargs(klass: tp.Type[tp.Any]) -> tp.Optional[tp.Set[str]]:
    """Keyword arguments of ``klass(n_q, ...)``; None when it takes ``**kwargs`` (anything goes)."""
    params = list(inspect.signature(klass.__init__).parameters.values())[2:]  # self, n_q
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def pattern_kwargs(cfg: omegaconf.DictConfig) -> tp.Tuple[str, type, dict]:
    """Validates a ``codebooks_pattern`` section; returns (name, provider class, kwargs).

    Raises:
        ConfigError: Unknown ``modeling`` name, a block no provider reads, or an argument the
            chosen provider does not take.
    """
    patterns = known_patterns()
    name = cfg.get("modeling")
    if name not in patterns:
        raise ConfigError(f"{SECTION}.modeling={name!r} is not a known pattern; known: {sorted(patterns)} "
                          "(add yours with audiocraft_mmd.registry.register_pattern).")
    for key in cfg:
        if key != "modeling" and key not in patterns:
            hint = " (AudioCraft's musiclm pattern reads codebooks_pattern.musiclm)" if key == "music_lm" else ""
            raise ConfigError(f"{SECTION}.{key!s} is read by no pattern provider{hint}; "
                              f"blocks must be named after a pattern: {sorted(patterns)}.")
    klass = patterns[name]
    block = cfg.get(name)
    kwargs = {} if block is None else omegaconf.OmegaConf.to_container(block, resolve=True)
    if not isinstance(kwargs, dict):
        raise ConfigError(f"{SECTION}.{name} must be a mapping of the {name!r} pattern's arguments, got {kwargs!r}.")
    accepted = _accepted_kwargs(klass)
    if accepted is not None:
        unread = sorted(set(kwargs) - accepted)
        if unread:
            raise ConfigError(f"{SECTION}.{name}.{unread[0]} is not an argument of the {name!r} pattern "
                              f"({klass.__name__} takes {sorted(accepted)}).")
    return name, klass, kwargs


def build_pattern_provider(n_q: int, cfg: omegaconf.DictConfig):
    """The provider ``cfg`` (a ``codebooks_pattern`` section) describes, for ``n_q`` codebooks."""
    name, klass, kwargs = pattern_kwargs(cfg)
    try:
        return klass(n_q, **kwargs)
    except (AssertionError, ValueError, TypeError) as error:
        raise ConfigError(f"{SECTION}.{name}: invalid arguments {kwargs} for {n_q} codebooks: {error}") from error


def pattern_alignment_delays(provider: tp.Any, kwargs: tp.Optional[dict] = None) -> tp.List[int]:
    """Per-codebook delays the pattern implies for the codec's loss alignment (``mmd.delays``).

    Codebook k's delay is the number of frames by which it lags codebook 0 among the tokens
    predicted together. Patterns that predict codebooks one at a time within a frame (``unroll``
    without delays, ``musiclm``) predict the frame's tuple jointly: all-zero delays.
    ``coarse_first`` predicts codebook 0 first for the whole sequence, then the others in parallel
    with its ``delays``: ``[0] + delays``. A provider of ours exposes ``alignment_delays``.
    """
    from audiocraft.modules.codebooks_patterns import (CoarseFirstPattern, DelayedPatternProvider, MusicLMPattern,
                                                       UnrolledPatternProvider)
    kwargs = kwargs or {}
    n_q = provider.n_q
    if hasattr(provider, "alignment_delays"):
        return [int(d) for d in provider.alignment_delays]
    if isinstance(provider, DelayedPatternProvider):
        return [int(d) for d in provider.delays]
    if isinstance(provider, UnrolledPatternProvider):
        return [int(d) for d in (kwargs.get("delays") or [0] * n_q)]
    if isinstance(provider, CoarseFirstPattern):
        return [0] + [int(d) for d in provider.delays]
    if isinstance(provider, MusicLMPattern):
        return [0] * n_q
    raise ConfigError(f"Cannot tell the alignment of pattern {type(provider).__name__}: give it an "
                      "`alignment_delays` attribute, or set pattern_consistency.allow_mismatch=true.")


def fits_any_alignment(provider: tp.Any) -> bool:
    """Whether the pattern's LM models every frame jointly whatever the codec's loss aligned (``depth``)."""
    return bool(getattr(provider, "fits_any_alignment", False))


def sequence_steps(provider: tp.Any, frames: int) -> int:
    """Autoregressive steps of the (temporal) transformer to generate ``frames`` frames with this pattern."""
    return provider.get_pattern(frames).num_sequence_steps


def depth_steps(provider: tp.Any, frames: int) -> int:
    """Autoregressive steps of a per-frame depth transformer for ``frames`` frames (0 for other patterns)."""
    return int(getattr(provider, "depth_steps_per_frame", 0)) * frames
