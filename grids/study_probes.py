"""``dora grid study_probes``: why does the loss (not) reduce dependence at the study's scale?

One change at a time to the study's delay-aligned, dim-scaled MMD codec (λ = 10): λ × 10, the loss on
residuals, the paper's macro-batch schedule (5 batches), codebooks of 64 codes, a grouped quantizer
(the last two with their own baselines); 7 new XPs of ``solver=compression/study`` (see
``audiocraft_mmd/study/specs.py``). ``python -m audiocraft_mmd.study report`` adds their table when they
have finished. Locally: ``python -m audiocraft_mmd.grid local study_probes --jobs 2``.
"""

from audiocraft_mmd.study.specs import SMALL

from ._study import StudyCodecExplorer, probes


@StudyCodecExplorer
def explorer(launcher):
    probes(SMALL, launcher)
