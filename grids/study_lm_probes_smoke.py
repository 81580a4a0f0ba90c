"""``dora grid study_lm_probes_smoke``: the LM probes of the smoke study (tiny LMs with twice the
updates), after ``study_codecs_smoke``."""

from audiocraft_mmd.study.specs import SMOKE

from ._study import StudyLMExplorer, lm_probes


@StudyLMExplorer
def explorer(launcher):
    lm_probes(SMOKE, launcher)
