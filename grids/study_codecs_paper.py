"""``dora grid study_codecs_paper``: stage 1 of the reproduction study at the paper's scale, for a GPU cluster.

As ``study_codecs`` on ``solver=compression/encodec_mmd_32khz`` (the paper's recipe), with λ ∈
{100, 1000}·47² (the paper's λ = 100 and 1000 in our normalisation, docs/METHOD.md) and the paper's
bandwidths beside the dimension-scaled ones. Slurm resources from the config and team file. Then
``study_lms_paper``, then ``python -m audiocraft_mmd.study report --scale paper``.
"""

from audiocraft_mmd.study.specs import PAPER

from ._study import StudyCodecExplorer, stage1


@StudyCodecExplorer
def explorer(launcher):
    stage1(PAPER, launcher)
