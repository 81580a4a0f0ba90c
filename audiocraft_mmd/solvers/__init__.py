"""Solvers registered with AudioCraft's solver builder (see :mod:`audiocraft_mmd.integration`)."""

from .compression_mmd import MMDCompressionSolver

__all__ = ["MMDCompressionSolver"]
