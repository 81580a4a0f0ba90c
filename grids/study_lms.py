"""``dora grid study_lms``: stage 2 of the reproduction study on a CPU (docs/research/RESULTS.md).

Needs ``study_codecs`` finished. Picks the best MMD codec (lowest delay-aligned MI within 1 dB SI-SNR
and 0.25 bit entropy of the baseline, see ``audiocraft_mmd/study/specs.py``), trains it at the second seed, and
trains one LM per pattern (parallel, delay, unroll) on the tokens of the baseline and of the best
codec at each seed: ``solver=musicgen/study``, about 2 minutes each. LMs on a codec that has not
finished are left for the next run of this grid, which says so.
"""

from audiocraft_mmd.study.specs import SMALL

from ._study import StudyLMExplorer, stage2


@StudyLMExplorer
def explorer(launcher):
    stage2(SMALL, launcher)
