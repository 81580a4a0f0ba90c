"""``grouped_delay``: the delay pattern over groups of codebooks, registered by this package.

Codebooks are split into consecutive groups of ``group_size``; the codebooks of group g are
predicted in parallel, delayed by g frames. ``group_size=1`` is MusicGen's delay pattern,
``group_size=K`` the parallel one; in between it trades autoregressive steps (T + ceil(K/g) - 1)
against how many codebooks one step must predict independently of each other.
"""

import math
import typing as tp

from audiocraft.modules.codebooks_patterns import DelayedPatternProvider

from ..registry import register_pattern


@register_pattern("grouped_delay")
class GroupedDelayPatternProvider(DelayedPatternProvider):
    """Delay pattern with one delay per group of ``group_size`` consecutive codebooks.

    Args:
        n_q: Number of codebooks K.
        group_size: Codebooks per group (>= 1).
    """

    def __init__(self, n_q: int, group_size: int = 2):
        if int(group_size) < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.group_size = int(group_size)
        super().__init__(n_q, delays=[q // self.group_size for q in range(n_q)])

    @property
    def alignment_delays(self) -> tp.List[int]:
        """Per-codebook delays, as the codec's ``mmd.delays`` must be for this pattern."""
        return list(self.delays)

    def num_groups(self) -> int:
        return math.ceil(self.n_q / self.group_size)
