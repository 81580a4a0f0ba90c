"""Metrics on codec outputs: codebook usage and dependence between codebooks (pure torch)."""

from .dependence import (AlignmentDependence, DependenceReport, KernelTest, PairMI, TotalCorrelation,
                         align_codes, dependence_report, pairwise_mutual_information, standard_alignments)
from .fast_slow import FastSlowDependence, FastSlowPair, fast_slow_mutual_information
from .information import ENTROPY_ESTIMATORS, register_entropy_estimator
from .kernel_test import aligned_rows, kernel_independence_test
from .lagged import LagDependence, lagged_mutual_information
from .usage import CodebookUsage, check_codes, code_histograms, codebook_usage, histogram_stats

__all__ = [
    "AlignmentDependence", "CodebookUsage", "DependenceReport", "ENTROPY_ESTIMATORS", "FastSlowDependence",
    "FastSlowPair", "KernelTest", "LagDependence", "PairMI",
    "TotalCorrelation", "align_codes", "aligned_rows", "check_codes", "code_histograms", "codebook_usage",
    "dependence_report", "fast_slow_mutual_information", "histogram_stats", "kernel_independence_test",
    "lagged_mutual_information", "pairwise_mutual_information",
    "register_entropy_estimator", "standard_alignments",
]
