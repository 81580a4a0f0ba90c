"""``dora grid study_lms_smoke``: stage 2 of the study in a minute (tiny parallel and unroll LMs on the
smoke codecs' tokens), after ``study_codecs_smoke``."""

from audiocraft_mmd.study.specs import SMOKE

from ._study import StudyLMExplorer, stage2


@StudyLMExplorer
def explorer(launcher):
    stage2(SMOKE, launcher)
