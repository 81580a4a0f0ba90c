"""Solvers registered with AudioCraft's solver builder (see :mod:`audiocraft_mmd.integration`)."""

from .compression_mmd import MMDCompressionSolver
from .musicgen_mmd import MMDMusicGenSolver

__all__ = ["MMDCompressionSolver", "MMDMusicGenSolver"]
