"""The study's grids (``study_codecs``, ``study_lms``, their probes, at each scale): how they schedule the
specs of :mod:`audiocraft_mmd.study.specs` on a launcher, and their tables.

The leading underscore keeps this module out of Dora's list of grids.
"""

from __future__ import annotations

import typing as tp

from audiocraft.grids.musicgen._explorers import LMExplorer
import treetable as tt

from audiocraft_mmd.study.specs import StudyScale, codec_xp, finished_evaluation, select_best
from audiocraft_mmd.utils.xps import is_finished

from ._sweep import MMDExplorer, prepare_launcher


def stage1(scale: StudyScale, launcher) -> None:
    """Schedules stage 1 on ``launcher``."""
    launcher.slurm_(**scale.slurm)
    for spec in scale.stage1():
        launcher(scale.codec_overrides(spec))


def probes(scale: StudyScale, launcher) -> None:
    """Schedules the probes (and their references that are not stage 1 codecs)."""
    launcher.slurm_(**scale.slurm)
    for probe in scale.probes:
        for spec in (probe.spec, probe.reference):
            launcher(scale.codec_overrides(spec))


def lm_probes(scale: StudyScale, launcher) -> tp.List[str]:
    """Schedules the LM probes on the tokens of each seed's baseline and best MMD codec; returns the
    codecs that have not finished (stage 2 trains the best one at the other seeds)."""
    launcher.slurm_(**scale.slurm)
    best = select_best(scale, finished_evaluation(scale)).best
    waiting = []
    for spec in scale.compared(best):
        xp = codec_xp(scale, spec)
        if not is_finished(xp):
            waiting.append(f"codec {xp.sig} ({spec.name})")
            continue
        for probe in scale.lm_probes:
            for pattern in scale.patterns:
                launcher(scale.lm_argv(xp.sig, pattern, spec.seed, probe.overrides))
    for line in waiting:
        print(f"Waiting: the LM probes on {line}; run {scale.lm_grid}, then this grid again.")
    return waiting


def stage2(scale: StudyScale, launcher) -> tp.List[str]:
    """Schedules stage 2 on ``launcher``; returns what waits (LMs whose codec has not finished yet)."""
    launcher.slurm_(**scale.slurm)
    selection = select_best(scale, finished_evaluation(scale))
    print(f"Best MMD codec: {selection.best.name} ({selection.reason}).")
    waiting = []
    for spec in scale.compared(selection.best):
        xp = codec_xp(scale, spec)
        if not is_finished(xp):
            launcher(scale.codec_overrides(spec))
            waiting.append(f"LMs on {spec.name} (codec {xp.sig}, scheduled now)")
            continue
        for pattern in scale.patterns:
            launcher(scale.lm_argv(xp.sig, pattern, spec.seed))
    for line in waiting:
        print(f"Waiting: {line}; run this grid again once it has finished.")
    return waiting


class StudyCodecExplorer(MMDExplorer):
    """The sweep's table plus the reconstruction plugin's SI-SNR (dB) and mel distance."""

    def get_grid_metrics(self):
        metrics = super().get_grid_metrics()
        metrics.append(tt.group("reconstruction", [tt.leaf("si_snr_db", ".2f"), tt.leaf("mel_distance", ".3f")],
                                align=">"))
        return metrics

    def process_history(self, history):
        parts = super().process_history(history)
        evaluate = next((entry["evaluate"] for entry in reversed(history) if "evaluate" in entry), {})
        parts["reconstruction"] = {key: evaluate[key] for key in ("si_snr_db", "mel_distance") if key in evaluate}
        return parts


class StudyLMExplorer(LMExplorer):
    """AudioCraft's LM table (train / valid cross-entropy), with this project's Slurm handling."""

    def __call__(self, launcher) -> None:
        prepare_launcher(launcher)
        super().__call__(launcher)
