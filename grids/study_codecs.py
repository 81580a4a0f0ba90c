"""``dora grid study_codecs``: stage 1 of the reproduction study on a CPU (docs/research/RESULTS.md).

The λ = 0 baseline codec at both seeds, and the codecs with the independence loss at the first seed:
alignment ∈ {parallel, delay} × λ ∈ {1, 10} × bandwidths ∈ {dim, median}: 10 XPs of
``solver=compression/study`` (500 updates, about 20 minutes each on one core). Then ``study_lms``.
Everything, locally and resumably: ``python -m audiocraft_mmd.study run``.
"""

from audiocraft_mmd.study.specs import SMALL

from ._study import StudyCodecExplorer, stage1


@StudyCodecExplorer
def explorer(launcher):
    stage1(SMALL, launcher)
