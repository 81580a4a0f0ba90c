"""Language models of this package: :class:`~audiocraft_mmd.models.depth_lm.DepthLM`
(``codebooks_pattern.modeling=depth``)."""
