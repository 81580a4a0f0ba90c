"""``dora grid independence``: the codecs of :mod:`audiocraft_mmd.study.independence_specs` (warm starts,
schedules, within-clip and soft-MI losses against λ = 0 twins), at every seed of the study.

Locally: ``python -m audiocraft_mmd.grid local independence --jobs 2`` (resumable); the table:
``python -m audiocraft_mmd.study independence``.
"""

from audiocraft_mmd.study.independence_specs import BASELINE, experiments
from audiocraft_mmd.study.specs import SMALL

from ._study import StudyCodecExplorer


@StudyCodecExplorer
def explorer(launcher):
    launcher.slurm_(**SMALL.slurm)
    for seed in SMALL.seeds:
        for label, (overrides, _) in experiments(seed).items():
            if label != BASELINE:
                launcher(overrides)
