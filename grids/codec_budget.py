"""``dora grid codec_budget``: how the study's codec improves with its budget, to find where it stops.

The study's baseline (``solver=compression/study``, λ = 0) at both study seeds, trained for 3000 updates (six
times the study's 500), with the evaluate stage and a kept checkpoint every 500 updates: each XP's history is
the learning curve of every evaluate figure (SI-SNR, mel, log-spectral distance per band, comb, entropies, MI)
and each checkpoint a codec of that budget for the LMs. The two seeds give the run-to-run spread, so
"stopped improving" means a step smaller than it. 2 XPs, about two hours each on one core. Without Slurm:
``python -m audiocraft_mmd.grid local codec_budget --jobs 2``; the curves:
``python -m audiocraft_mmd.plot --xp SIG --xp SIG``.
"""

from .codec_recipe import RecipeExplorer

UPDATES, EVERY = 3000, 500
SEEDS = (2036, 2037)
SLURM = {"gpus": 0, "cpus_per_task": 1, "mem_per_gpu": 4, "time": 240}  # mem_per_gpu: GB for the (one) task


@RecipeExplorer
def explorer(launcher):
    launcher.slurm_(**SLURM)
    launcher.bind_({"solver": "compression/study"})
    sub = launcher.bind({"optim.epochs": UPDATES // 50, "evaluate.every": EVERY // 50,
                         "checkpoint.save_every": EVERY // 50})
    for seed in SEEDS:
        sub({"seed": seed})
