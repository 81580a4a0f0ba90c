"""``dora grid study_codecs_smoke``: stage 1 of the study in a minute (tiny budgets: a baseline and one
MMD codec), to check a set-up end to end: ``python -m audiocraft_mmd.study run --scale smoke``."""

from audiocraft_mmd.study.specs import SMOKE

from ._study import StudyCodecExplorer, stage1


@StudyCodecExplorer
def explorer(launcher):
    stage1(SMOKE, launcher)
