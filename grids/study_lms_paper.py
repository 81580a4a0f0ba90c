"""``dora grid study_lms_paper``: stage 2 of the reproduction study at the paper's scale, for a GPU cluster.

As ``study_lms``, with MusicGen-small-sized LMs (24 layers, width 1024) on 10 s segments of the
32 kHz codecs' tokens. Run it again once the second seed's codec has finished.
"""

from audiocraft_mmd.study.specs import PAPER

from ._study import StudyLMExplorer, stage2


@StudyLMExplorer
def explorer(launcher):
    stage2(PAPER, launcher)
