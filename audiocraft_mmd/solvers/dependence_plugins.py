"""Evaluate-stage plugins of the codebooks: usage and entropy, the loss's statistic, and the dependence
between codebooks (pairwise MI, its fast and slow parts)."""

from __future__ import annotations

import math
import typing as tp

import torch

from ..metrics.dependence import dependence_report, standard_alignments
from ..metrics.fast_slow import fast_slow_mutual_information
from ..metrics.usage import code_histograms, histogram_stats
from .evaluation import EvaluationBatch, EvaluationPlugin, register_evaluation_plugin


@register_evaluation_plugin("codebooks")
class CodebookUsage(EvaluationPlugin):
    """Per-codebook entropy (bits), perplexity and fraction of codes used over the whole split.

    A collapsed codebook (low entropy) is trivially independent of the others: read dependence
    figures next to these.
    """

    def __init__(self, solver: tp.Any):
        super().__init__(solver)
        self.bins = solver.model.quantizer.bins
        self.counts: tp.Optional[torch.Tensor] = None

    def update(self, batch: EvaluationBatch) -> None:
        counts = code_histograms(batch.captured.codes.cpu(), self.bins)
        self.counts = counts if self.counts is None else self.counts + counts

    def compute(self) -> tp.Dict[str, float]:
        if self.counts is None:
            return {}
        metrics = {}
        for name, values in histogram_stats(self.counts).items():
            for k, value in enumerate(values.tolist()):
                metrics[f"{name}_q{k}"] = value
        metrics["entropy_max"] = math.log2(self.bins)
        return metrics


@register_evaluation_plugin("mmd")
class MMDStatistic(EvaluationPlugin):
    """The training criterion (unclamped) averaged over evaluate batches."""

    def __init__(self, solver: tp.Any):
        super().__init__(solver)
        self.values: tp.List[float] = []

    def update(self, batch: EvaluationBatch) -> None:
        if len(batch.captured.stream_list) < 2:  # one active codebook: no pair to measure
            return
        result = self.solver.mmd_statistic(batch.captured)
        self.values.append(result.estimate.item())

    def compute(self) -> tp.Dict[str, float]:
        if not self.values:
            return {}
        return {"mmd_estimate": sum(self.values) / len(self.values)}


@register_evaluation_plugin("dependence")
class CodebookDependence(EvaluationPlugin):
    """Bias-corrected mean pairwise mutual information between codebooks, parallel and delay-aligned.

    Metrics: ``mi_parallel`` and ``mi_delay`` (bits, mean over pairs, see
    :mod:`audiocraft_mmd.metrics.dependence`), ``nmi_parallel`` and ``nmi_delay`` (normalised by
    ``min(H_i, H_j)``), ``mi_frames_per_cell`` (smallest frames / 2^(H_i + H_j) over pairs: below 1,
    the figures rest on the bias correction), ``entropy_mean`` and ``entropy_min`` (bits: a collapsed
    codebook reads as independent), and the split of each MI into ``mi_slow_*`` (codes of the same clip
    at least a quarter of the clip apart) and ``mi_fast_*`` (the rest: what a parallel/delay LM pays
    for; :mod:`audiocraft_mmd.metrics.fast_slow`). Each process measures the codes it saw.
    """

    shifts = 3  # shifted nulls of the bias correction: a few are enough, the null spread is small
    slow_gap_fraction = 0.25  # of the evaluate clip's aligned steps: 1 s clips at 100 Hz give 0.24 s

    def __init__(self, solver: tp.Any):
        super().__init__(solver)
        self.bins = solver.model.quantizer.bins
        self.codes: tp.List[torch.Tensor] = []

    def update(self, batch: EvaluationBatch) -> None:
        self.codes.append(batch.captured.codes.detach().cpu())

    def compute(self) -> tp.Dict[str, float]:
        if not self.codes:
            return {}
        codes = torch.cat(self.codes)
        num_codebooks = codes.shape[1]
        if num_codebooks < 2:
            return {}
        report = dependence_report(codes, self.bins, standard_alignments(num_codebooks), shifts=self.shifts)
        metrics = {"entropy_mean": sum(report.usage.entropy) / num_codebooks,
                   "entropy_min": min(report.usage.entropy)}
        for name, alignment in report.alignments.items():
            metrics[f"mi_{name}"] = alignment.mean("mi")
            metrics[f"nmi_{name}"] = alignment.mean("normalized")
            steps = codes.shape[-1] - max(alignment.delays)
            gap = int(self.slow_gap_fraction * steps)
            if gap >= 1:
                split = fast_slow_mutual_information(codes, self.bins, gap, alignment.delays, shifts=self.shifts)
                metrics[f"mi_fast_{name}"], metrics[f"mi_slow_{name}"] = split.fast, split.slow
        metrics["mi_frames_per_cell"] = min(pair.frames_per_effective_cell
                                            for alignment in report.alignments.values() for pair in alignment.pairs)
        return metrics

