"""Dora grids (``dora grid NAME``), importable as ``audiocraft_mmd.grids``."""
