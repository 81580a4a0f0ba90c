"""``depth``: the parallel layout for a temporal transformer, plus a depth transformer per frame.

Selecting ``codebooks_pattern.modeling=depth`` builds :class:`audiocraft_mmd.models.depth_lm.DepthLM`
instead of MusicGen's ``LMModel`` (see :func:`audiocraft_mmd.integration` 's LM builder). The pattern
is the parallel one (T temporal steps, one per frame); the depth transformer then predicts the K
codes of each frame one after the other, so the frame is modelled jointly. Its sizes are this
pattern's arguments (``codebooks_pattern.depth.{num_layers,dim,num_heads,hidden_scale,context}``), so they
are validated like every pattern's and travel with the LM's config into exports.
"""

import typing as tp

from audiocraft.modules.codebooks_patterns import ParallelPatternProvider

from ..registry import register_pattern


@register_pattern("depth")
class DepthPatternProvider(ParallelPatternProvider):
    """Parallel layout over frames; a depth transformer of the given size over each frame's codebooks.

    Args:
        n_q: Number of codebooks K.
        num_layers: Layers of the depth transformer.
        dim: Width of the depth transformer.
        num_heads: Attention heads of the depth transformer (must divide ``dim``).
        hidden_scale: Feed-forward width of the depth transformer, in multiples of ``dim``.
        context: Where the temporal state enters the depth transformer: ``first``, as its input at depth
            position 0 only (the RQ-Transformer's choice: later positions read it through attention), or
            ``every``, projected (one linear map per position) and added to the input of every position
            (Moshi's depth transformer), so each code's prediction reads the context directly.
    """

    CONTEXTS = ("first", "every")

    # The joint distribution of a frame's codes is modelled exactly, whatever the codec's loss
    # aligned: the pattern-consistency check accepts any codec with it.
    fits_any_alignment = True

    def __init__(self, n_q: int, num_layers: int = 1, dim: int = 128, num_heads: int = 4, hidden_scale: int = 4,
                 context: str = "every"):
        for name, value in [("num_layers", num_layers), ("dim", dim), ("num_heads", num_heads),
                            ("hidden_scale", hidden_scale)]:
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if int(dim) % int(num_heads):
            raise ValueError(f"num_heads={num_heads} must divide dim={dim}")
        if context not in self.CONTEXTS:
            raise ValueError(f"context must be one of {', '.join(self.CONTEXTS)}, got {context!r}")
        super().__init__(n_q)
        self.num_layers, self.dim = int(num_layers), int(dim)
        self.num_heads, self.hidden_scale = int(num_heads), int(hidden_scale)
        self.context = context

    @property
    def alignment_delays(self) -> tp.List[int]:
        """All zeros: a frame's codes are predicted jointly (but see ``fits_any_alignment``)."""
        return [0] * self.n_q

    @property
    def depth_steps_per_frame(self) -> int:
        """Autoregressive depth-transformer steps per frame, on top of the one temporal step."""
        return self.n_q
