"""Codebook interleaving patterns: building them from config with clear errors, and their alignment.

``codebooks_pattern.modeling=<name>`` names a pattern provider: one registered by this package (or
yours) through :func:`audiocraft_mmd.registry.register_pattern`, or one of AudioCraft's
(``parallel``, ``delay``, ``unroll``, ``coarse_first``, ``musiclm``). Its keyword arguments are read
from ``codebooks_pattern.<name>``. Unlike AudioCraft's builder, :func:`build_pattern_provider`
rejects unknown names, arguments the provider does not take, and blocks that no provider reads.
"""

from .config import (build_pattern_provider, depth_steps, fits_any_alignment, known_patterns,
                     pattern_alignment_delays, pattern_kwargs, sequence_steps)
from .depth import DepthPatternProvider
from .grouped_delay import GroupedDelayPatternProvider

__all__ = ["build_pattern_provider", "depth_steps", "fits_any_alignment", "known_patterns", "pattern_alignment_delays",
           "pattern_kwargs", "sequence_steps", "DepthPatternProvider", "GroupedDelayPatternProvider"]
