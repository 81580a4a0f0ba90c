"""``dora grid independence``: can the loss lower the dependence a parallel/delay LM pays for? (#23)

Warm starts: each seed's trained study baseline (``study_codecs``, 500 updates) fine-tuned for 200 more
updates (``continue_from``), with the loss and, as the reference, with λ = 0 (same start, budget and
seed). The lead of FINDINGS.md (λ = 3000, parallel alignment, median bandwidths, pooled product) beside
the within-clip product and the soft-assignment MI steered to a gradient share of 1. One run from
scratch: λ = 0 for the first half, then steered to a gradient share of 1, against the baseline itself.
The fast/slow split of the MI is in every evaluate stage (``mi_fast_*``, ``mi_slow_*``). Locally:
``python -m audiocraft_mmd.grid local independence --jobs 2`` (resumable).
"""

from ._study import SMALL, StudyCodecExplorer, codec_xp

FINETUNE_EPOCHS = 4  # 200 updates of 50
LOSS = {"mmd.alignment": "parallel", "mmd.bandwidth_scale": "median"}
FINETUNES = {
    "lambda=0": {"mmd.weight": 0.},
    "lambda=3000 pooled": {**LOSS, "mmd.weight": 3000.},
    "lambda=3000 clip": {**LOSS, "mmd.weight": 3000., "mmd.product": "clip"},
    "soft_mi clip, ratio 1": {"mmd.alignment": "parallel", "mmd.estimator": "soft_mi", "mmd.product": "clip",
                              "mmd.weight": 1., "mmd.target_grad_ratio": 1.},
}
# From scratch: the study's 500 updates, λ = 0 for the first 250 (the codebooks initialise and spread).
SCHEDULE = {**LOSS, "mmd.weight": 3000., "mmd.warmup": 250, "mmd.target_grad_ratio": 1.}


def finetune_overrides(seed: int, variant: str):
    start = codec_xp(SMALL, SMALL.baseline(seed)).sig
    return {"solver": SMALL.codec_solver, "seed": seed, "continue_from": f"//sig/{start}",
            "optim.epochs": FINETUNE_EPOCHS, **FINETUNES[variant]}


@StudyCodecExplorer
def explorer(launcher):
    launcher.slurm_(**SMALL.slurm)
    for seed in SMALL.seeds:
        for variant in FINETUNES:
            launcher(finetune_overrides(seed, variant))
        launcher({"solver": SMALL.codec_solver, "seed": seed, **SCHEDULE})
