"""``dora grid independence``: can the loss lower the dependence a parallel/delay LM pays for? (#23)

Warm starts: each seed's trained study baseline (``study_codecs``, 500 updates) fine-tuned for 200 more
updates (``continue_from``), with the loss and, as the reference, with λ = 0 (same start, budget and
seed). The lead of FINDINGS.md (λ = 3000, parallel alignment, median bandwidths, pooled product) beside
the within-clip product and the soft-assignment MI steered to a gradient share of 1. One run from
scratch: λ = 0 for the first half, then steered to a gradient share of 1, against the baseline itself.
Then the longer budget: the one-run schedule and the λ = 3000 fine-tune at five times the updates, each
against its reference at the same budget (about 45 and 16 XP-minutes each on one core). Then the
levers left untried (:data:`LEVERS`, :data:`SCHEDULE_LEVER`): the within-clip product at λ = 1000,
soft_mi at a gradient share of 0.3 (and with sharper assignments), the schedule with a shorter warm-up
and a share of 3, and the product of marginals given the local context (:data:`CHUNK`).
The fast/slow split of the MI is in every evaluate stage (``mi_fast_*``, ``mi_slow_*``). Locally:
``python -m audiocraft_mmd.grid local independence --jobs 2`` (resumable); the table:
``python -m audiocraft_mmd.independence_report``.
"""

import typing as tp

from ._study import SMALL, StudyCodecExplorer, codec_xp

FINETUNE_EPOCHS = 4  # 200 updates of 50
LOSS = {"mmd.alignment": "parallel", "mmd.bandwidth_scale": "median"}
BASELINE = "baseline (500 updates)"
FINETUNE_REFERENCE = "fine-tune λ=0"
FINETUNES = {
    FINETUNE_REFERENCE: {"mmd.weight": 0.},
    "fine-tune λ=3000 pooled": {**LOSS, "mmd.weight": 3000.},
    "fine-tune λ=3000 clip": {**LOSS, "mmd.weight": 3000., "mmd.product": "clip"},
    "fine-tune soft_mi clip, ratio 1": {"mmd.alignment": "parallel", "mmd.estimator": "soft_mi",
                                        "mmd.product": "clip", "mmd.weight": 1., "mmd.target_grad_ratio": 1.},
}
# The levers the first figures left untried (docs/INDEPENDENCE.md): the within-clip product at a third of
# the weight (it cut the fast MI most, at 0.77-1.05 dB), soft_mi at a smaller gradient share (at 1 it
# collapsed a codebook) and with sharper assignments (closer to the hard codes' MI).
LEVERS = {
    "fine-tune λ=1000 clip": {**LOSS, "mmd.weight": 1000., "mmd.product": "clip"},
    "fine-tune soft_mi clip, ratio 0.3": {"mmd.alignment": "parallel", "mmd.estimator": "soft_mi", "mmd.product": "clip",
                                          "mmd.weight": 1., "mmd.target_grad_ratio": 0.3},
    "fine-tune soft_mi clip, ratio 0.3, τ 0.3": {"mmd.alignment": "parallel", "mmd.estimator": "soft_mi",
                                                 "mmd.product": "clip", "mmd.weight": 1., "mmd.target_grad_ratio": 0.3,
                                                 "mmd.temperature": 0.3},
}
# Dependence given the local context (docs/INDEPENDENCE.md, `mmd.product=chunk`): the product of
# marginals from chunks of 10 aligned frames (100 ms) of a clip, steered to a gradient share of 1. Every
# estimator above is unconditional or given the whole clip, and where they cut the fast MI they also
# cut the codes' dependence on their own past, which the LMs use; this one leaves that dependence alone.
CHUNK = "fine-tune chunk 10, ratio 1"
LEVERS[CHUNK] = {**LOSS, "mmd.weight": 3000., "mmd.product": "chunk", "mmd.chunk_frames": 10,
                 "mmd.target_grad_ratio": 1.}
# From scratch: the study's 500 updates, λ = 0 for the first 250 (the codebooks initialise and spread).
SCHEDULE = "one run: warmup 250, ratio 1"
SCHEDULE_OVERRIDES = {**LOSS, "mmd.weight": 3000., "mmd.warmup": 250, "mmd.target_grad_ratio": 1.}
# The schedule's lever: a shorter warm-up and a larger gradient share (at 1 the cut was 6-24 %).
SCHEDULE_LEVER = "one run: warmup 100, ratio 3"
SCHEDULE_LEVER_OVERRIDES = {**SCHEDULE_OVERRIDES, "mmd.warmup": 100, "mmd.target_grad_ratio": 3.}


# The longer budget: five times the updates of each comparison above, same starts and references.
LONG = 5
LONG_BASELINE = f"baseline ×{LONG} ({LONG * 500} updates)"
LONG_SCHEDULE = f"one run ×{LONG}: warmup 250, ratio 1"
LONG_FINETUNE_REFERENCE = f"fine-tune ×{LONG} λ=0 ({LONG * 200} updates)"
LONG_EXPERIMENTS = {
    LONG_BASELINE: ({"optim.epochs": LONG * 10}, None, None),
    LONG_SCHEDULE: ({**SCHEDULE_OVERRIDES, "optim.epochs": LONG * 10}, LONG_BASELINE, None),
    LONG_FINETUNE_REFERENCE: ({"mmd.weight": 0., "optim.epochs": LONG * FINETUNE_EPOCHS}, None, "start"),
    f"fine-tune ×{LONG} λ=3000 pooled": ({**FINETUNES["fine-tune λ=3000 pooled"], "optim.epochs": LONG * FINETUNE_EPOCHS},
                                        LONG_FINETUNE_REFERENCE, "start"),
}

# After the ×5 figures (2026-12-04): the one-run schedule is the only variant whose cut grew with the
# budget, and so did its SI-SNR cost. The same at half the gradient share, and at twice that budget again.
LONGER = 10
LONGER_BASELINE = f"baseline ×{LONGER} ({LONGER * 500} updates)"
LONG_SCHEDULE_HALF = f"one run ×{LONG}: warmup 250, ratio 0.5"
LONGER_SCHEDULE = f"one run ×{LONGER}: warmup 250, ratio 1"
LONG_SCHEDULE_LEVERS = {
    LONG_SCHEDULE_HALF: (
        {**SCHEDULE_OVERRIDES, "mmd.target_grad_ratio": 0.5, "optim.epochs": LONG * 10}, LONG_BASELINE),
    LONGER_BASELINE: ({"optim.epochs": LONGER * 10}, None),
    LONGER_SCHEDULE: ({**SCHEDULE_OVERRIDES, "optim.epochs": LONGER * 10}, LONGER_BASELINE),
}


def experiments(seed: int) -> tp.Dict[str, tp.Tuple[tp.Dict[str, tp.Any], tp.Optional[str]]]:
    """``label -> (overrides, label of the codec it is compared with)`` at ``seed``; the baseline is the
    study's (grid ``study_codecs``)."""
    baseline = SMALL.codec_overrides(SMALL.baseline(seed))
    start = {"solver": SMALL.codec_solver, "seed": seed, "continue_from": f"//sig/{codec_xp(SMALL, SMALL.baseline(seed)).sig}",
             "optim.epochs": FINETUNE_EPOCHS}
    table = {BASELINE: (baseline, None)}
    for label, overrides in FINETUNES.items():
        table[label] = ({**start, **overrides}, None if label == FINETUNE_REFERENCE else FINETUNE_REFERENCE)
    table[SCHEDULE] = ({"solver": SMALL.codec_solver, "seed": seed, **SCHEDULE_OVERRIDES}, BASELINE)
    for label, (overrides, reference, warm) in LONG_EXPERIMENTS.items():
        table[label] = ({**(start if warm else {"solver": SMALL.codec_solver, "seed": seed}), **overrides}, reference)
    for label, overrides in LEVERS.items():
        table[label] = ({**start, **overrides}, FINETUNE_REFERENCE)
    table[SCHEDULE_LEVER] = ({"solver": SMALL.codec_solver, "seed": seed, **SCHEDULE_LEVER_OVERRIDES}, BASELINE)
    for label, (overrides, reference) in LONG_SCHEDULE_LEVERS.items():
        table[label] = ({"solver": SMALL.codec_solver, "seed": seed, **overrides}, reference)
    return table


def experiment_xp(overrides: tp.Dict[str, tp.Any]):
    """The Dora XP of one experiment's overrides (the signature the grid schedules)."""
    from audiocraft_mmd.train import main
    return main.get_xp(main.value_to_argv(overrides))


@StudyCodecExplorer
def explorer(launcher):
    launcher.slurm_(**SMALL.slurm)
    for seed in SMALL.seeds:
        for label, (overrides, _) in experiments(seed).items():
            if label != BASELINE:
                launcher(overrides)
