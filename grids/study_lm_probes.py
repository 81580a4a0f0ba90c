"""``dora grid study_lm_probes``: does the study's LM comparison change with the LM's budget?

Needs ``study_lms`` run (it trains the best MMD codec at the second seed). Trains parallel, delay and
unroll LMs on the tokens of each seed's baseline and best MMD codec with 4 times the updates, at the
study's lr and at lr 3e-3 (24 XPs of ``solver=musicgen/study``, 3 to 9 minutes each; see
``audiocraft_mmd/study/specs.py``). LMs on a codec that has not finished wait for the next run of this grid.
``python -m audiocraft_mmd.study report`` adds their table when they have finished. Locally:
``python -m audiocraft_mmd.grid local study_lm_probes --jobs 2``.
"""

from audiocraft_mmd.study.specs import SMALL

from ._study import StudyLMExplorer, lm_probes


@StudyLMExplorer
def explorer(launcher):
    lm_probes(SMALL, launcher)
