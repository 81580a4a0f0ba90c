"""``dora grid study_lm_probes_smoke``: the LM probes of the smoke study (tiny LMs with twice the
updates), after ``study_codecs_smoke``."""

from ._study import SMOKE, StudyLMExplorer, lm_probes


@StudyLMExplorer
def explorer(launcher):
    lm_probes(SMOKE, launcher)
