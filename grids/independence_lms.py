"""``dora grid independence_lms``: parallel, delay and depth LMs on the codecs of grid ``independence``
(:mod:`audiocraft_mmd.study.independence_specs`). LMs whose codec has not finished wait for the next run
of this grid.

Locally: ``python -m audiocraft_mmd.grid local independence_lms --jobs 2`` (resumable); the table:
``python -m audiocraft_mmd.study independence --lms``.
"""

from audiocraft_mmd.study.independence_specs import (ABLATIONS, BASELINE, LMS, REPEAT_CODEC, REPEAT_SEED_OFFSET,
                                                     experiment_xp, experiments, lm_argv, lm_codecs)
from audiocraft_mmd.study.specs import SMALL
from audiocraft_mmd.utils.xps import is_finished

from ._study import StudyLMExplorer


@StudyLMExplorer
def explorer(launcher):
    launcher.slurm_(**SMALL.slurm)
    waiting = []
    for label in lm_codecs():
        for seed in SMALL.seeds:
            codec = experiment_xp(experiments(seed)[label][0])
            if not is_finished(codec):
                waiting.append(f"{label} seed={seed} (codec {codec.sig})")
                continue
            for lm in LMS:
                if lm not in ABLATIONS:
                    launcher(lm_argv(codec.sig, lm, seed))
    first = SMALL.seeds[0]
    codec = experiment_xp(experiments(first)[REPEAT_CODEC][0])
    if is_finished(codec):
        for lm in LMS:
            if lm not in ABLATIONS:
                launcher(lm_argv(codec.sig, lm, first + REPEAT_SEED_OFFSET))
    for seed in SMALL.seeds:
        codec = experiment_xp(experiments(seed)[BASELINE][0])
        if is_finished(codec):
            for lm in ABLATIONS:
                launcher(lm_argv(codec.sig, lm, seed))
    for line in dict.fromkeys(waiting):
        print(f"Waiting: the LMs on {line}; run grid independence, then this grid again.")
