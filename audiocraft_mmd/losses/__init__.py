"""Losses of audiocraft_mmd: the independence-promoting MMD loss between codebook streams."""

from .mmd import (
    BANDWIDTH_SCALES,
    DEFAULT_BANDWIDTHS,
    PAPER_BANDWIDTHS,
    STANDARDIZATIONS,
    MMDIndependence,
    MMDIndependenceLoss,
    align_streams,
    mmd_independence,
)
from .mmd_estimators import ESTIMATORS, get_estimator, register_estimator
from . import hsic, rff  # noqa: F401  (register "hsic", "rff", "rff_256", "rff_4096")

__all__ = [
    "BANDWIDTH_SCALES",
    "DEFAULT_BANDWIDTHS",
    "ESTIMATORS",
    "PAPER_BANDWIDTHS",
    "STANDARDIZATIONS",
    "MMDIndependence",
    "MMDIndependenceLoss",
    "align_streams",
    "get_estimator",
    "mmd_independence",
    "register_estimator",
]
