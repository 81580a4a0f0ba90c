"""``dora grid codec_budget``: how the study's codec improves with its budget, to find where it stops.

The study's baseline (``solver=compression/study``, λ = 0) at both study seeds, trained for 3000 updates (six
times the study's 500), with the evaluate stage and a kept checkpoint every 500 updates: each XP's history is
the learning curve of every evaluate figure (SI-SNR, mel, log-spectral distance per band, comb, entropies, MI)
and each checkpoint a codec of that budget for the LMs. The two seeds give the run-to-run spread, so
"stopped improving" means a step smaller than it. 2 XPs, 110 minutes each on one core (measured).
Without Slurm: ``python -m audiocraft_mmd.grid local codec_budget --jobs 2``; the tables:
``python -m audiocraft_mmd.study budget`` (:mod:`audiocraft_mmd.study.budget`); the curves:
``python -m audiocraft_mmd.plot --xp SIG --xp SIG``.
"""

from audiocraft_mmd.study import budget
from audiocraft_mmd.study.specs import SMALL
from .codec_recipe import RecipeExplorer

SLURM = {"gpus": 0, "cpus_per_task": 1, "mem_per_gpu": 4, "time": 240}  # mem_per_gpu: GB for the (one) task


@RecipeExplorer
def explorer(launcher):
    launcher.slurm_(**SLURM)
    for seed in SMALL.seeds:
        launcher(budget.overrides(seed))
