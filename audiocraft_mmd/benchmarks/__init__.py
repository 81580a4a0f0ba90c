"""Benchmarks of audiocraft_mmd, run as modules, e.g. ``python -m audiocraft_mmd.benchmarks.estimators``."""
