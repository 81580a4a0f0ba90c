"""What grids ``independence`` and ``independence_lms`` train: can the loss lower the dependence a
parallel/delay LM pays for, and is a codec that does a gain for the LMs?

Codecs (grid ``independence``). Warm starts: each seed's trained study baseline (``study_codecs``, 500
updates) fine-tuned for 200 more updates (``continue_from``), with the loss and, as the reference, with
λ = 0 (same start, budget and seed): λ = 3000 with the parallel alignment, median bandwidths and the
pooled product, beside the within-clip product and the soft-assignment MI steered to a gradient share of
1. One run from scratch: λ = 0 for the first half, then steered to a gradient share of 1, against the
baseline itself. Then the longer budgets: the one-run schedule and the λ = 3000 fine-tune at five and
ten times the updates, each against its reference at the same budget. Then the further levers
(:data:`LEVERS`, :data:`SCHEDULE_LEVER`): the within-clip product at λ = 1000, soft_mi at a gradient
share of 0.3 (and with sharper assignments), the schedule with a shorter warm-up and a share of 3, and
the product of marginals given the local context (:data:`CHUNK`). Then, a pilot on today's recipe, the
loss given the past and the predictability term (:data:`CONDITIONAL`), from scratch against the baseline.

LMs (grid ``independence_lms``): parallel, delay and depth LMs (the study's LMs: ``solver=musicgen/study``
at 400 updates and lr 3e-3; the depth LM is the default one, see :data:`LMS`) on the tokens of each
seed's variants in :data:`LM_PAIRS` and of the codecs they are compared with; then the same LMs with
another seed on the first seed's baseline (their run-to-run spread), and the depth ablations on the
baselines. The depth LM models each frame's codes jointly: on the reference codec its gap to the
parallel LM (codebooks 2..K) is the price of the parallel factorisation, and the share of it a variant
closes is what the loss is for.
"""

from __future__ import annotations

import typing as tp

from .specs import SMALL, codec_xp

FINETUNE_EPOCHS = 4  # 200 updates of 50
# Overrides: config key -> value.
Overrides = tp.Dict[str, tp.Any]
LOSS: Overrides = {"mmd.alignment": "parallel", "mmd.bandwidth_scale": "median"}
BASELINE = "baseline (500 updates)"
FINETUNE_REFERENCE = "fine-tune λ=0"
FINETUNES: tp.Dict[str, Overrides] = {
    FINETUNE_REFERENCE: {"mmd.weight": 0.},
    "fine-tune λ=3000 pooled": {**LOSS, "mmd.weight": 3000.},
    "fine-tune λ=3000 clip": {**LOSS, "mmd.weight": 3000., "mmd.product": "clip"},
    "fine-tune soft_mi clip, ratio 1": {"mmd.alignment": "parallel", "mmd.estimator": "soft_mi",
                                        "mmd.product": "clip", "mmd.weight": 1., "mmd.target_grad_ratio": 1.},
}
# The levers the first figures left untried (docs/research/INDEPENDENCE.md): the within-clip product at a third of
# the weight (it cut the fast MI most, at 0.77-1.05 dB), soft_mi at a smaller gradient share (at 1 it
# collapsed a codebook) and with sharper assignments (closer to the hard codes' MI).
LEVERS: tp.Dict[str, Overrides] = {
    "fine-tune λ=1000 clip": {**LOSS, "mmd.weight": 1000., "mmd.product": "clip"},
    "fine-tune soft_mi clip, ratio 0.3": {"mmd.alignment": "parallel", "mmd.estimator": "soft_mi",
                                          "mmd.product": "clip", "mmd.weight": 1., "mmd.target_grad_ratio": 0.3},
    "fine-tune soft_mi clip, ratio 0.3, τ 0.3": {"mmd.alignment": "parallel", "mmd.estimator": "soft_mi",
                                                 "mmd.product": "clip", "mmd.weight": 1., "mmd.target_grad_ratio": 0.3,
                                                 "mmd.temperature": 0.3},
}
# Dependence given the local context (docs/research/INDEPENDENCE.md, `mmd.product=chunk`): the product of
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

# Independence given the past (docs/METHOD.md, mmd.condition / mmd.predictability): a pilot on today's
# recipe, one run from scratch at the study's budget against the baseline, as the schedule is. The loss
# on the innovations, steered as the schedule; and the predictability term alone (the MMD off) at two
# weights: at λp = 1 its gradient is about that of the other losses at the encoder output at the start.
PAST = "one run: past, warmup 250, ratio 1"
PREDICTABLE = "one run: predictability 1"
CONDITIONAL: tp.Dict[str, Overrides] = {
    PAST: {**SCHEDULE_OVERRIDES, "mmd.condition": "past"},
    PREDICTABLE: {**LOSS, "mmd.weight": 0., "mmd.predictability": 1.},
    "one run: predictability 0.1": {**LOSS, "mmd.weight": 0., "mmd.predictability": 0.1},
}


# The longer budget: five times the updates of each comparison above, same starts and references.
LONG = 5
LONG_BASELINE = f"baseline ×{LONG} ({LONG * 500} updates)"
LONG_SCHEDULE = f"one run ×{LONG}: warmup 250, ratio 1"
LONG_FINETUNE_REFERENCE = f"fine-tune ×{LONG} λ=0 ({LONG * 200} updates)"
# label -> (overrides, label of the codec it is compared with, "start" for a warm start)
LONG_EXPERIMENTS: tp.Dict[str, tp.Tuple[Overrides, tp.Optional[str], tp.Optional[str]]] = {
    LONG_BASELINE: ({"optim.epochs": LONG * 10}, None, None),
    LONG_SCHEDULE: ({**SCHEDULE_OVERRIDES, "optim.epochs": LONG * 10}, LONG_BASELINE, None),
    LONG_FINETUNE_REFERENCE: ({"mmd.weight": 0., "optim.epochs": LONG * FINETUNE_EPOCHS}, None, "start"),
    f"fine-tune ×{LONG} λ=3000 pooled": (
        {**FINETUNES["fine-tune λ=3000 pooled"], "optim.epochs": LONG * FINETUNE_EPOCHS}, LONG_FINETUNE_REFERENCE,
        "start"),
}

# After the ×5 figures (2026-12-04): the one-run schedule is the only variant whose cut grew with the
# budget, and so did its SI-SNR cost. The same at half the gradient share, and at twice that budget again.
LONGER = 10
LONGER_BASELINE = f"baseline ×{LONGER} ({LONGER * 500} updates)"
LONG_SCHEDULE_HALF = f"one run ×{LONG}: warmup 250, ratio 0.5"
LONGER_SCHEDULE = f"one run ×{LONGER}: warmup 250, ratio 1"
LONG_SCHEDULE_LEVERS: tp.Dict[str, tp.Tuple[Overrides, tp.Optional[str]]] = {
    LONG_SCHEDULE_HALF: (
        {**SCHEDULE_OVERRIDES, "mmd.target_grad_ratio": 0.5, "optim.epochs": LONG * 10}, LONG_BASELINE),
    LONGER_BASELINE: ({"optim.epochs": LONGER * 10}, None),
    LONGER_SCHEDULE: ({**SCHEDULE_OVERRIDES, "optim.epochs": LONGER * 10}, LONGER_BASELINE),
}


def experiments(seed: int, signature: tp.Optional[tp.Callable[[tp.Any], tp.Optional[str]]] = None
                ) -> tp.Dict[str, tp.Tuple[Overrides, tp.Optional[str]]]:
    """``label -> (overrides, label of the codec it is compared with)`` at ``seed``; the baseline is the
    study's (grid ``study_codecs``). ``signature``: the signature of a codec spec, which the warm starts
    name (default: Dora's; the stored measurements' when the XPs are absent)."""
    baseline = SMALL.codec_overrides(SMALL.baseline(seed))
    baseline_sig = (signature or (lambda spec: codec_xp(SMALL, spec).sig))(SMALL.baseline(seed))
    start = {"solver": SMALL.codec_solver, "seed": seed,
             "continue_from": f"//sig/{baseline_sig}", "optim.epochs": FINETUNE_EPOCHS}
    table: tp.Dict[str, tp.Tuple[Overrides, tp.Optional[str]]] = {BASELINE: (baseline, None)}
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
    for label, overrides in CONDITIONAL.items():
        table[label] = ({"solver": SMALL.codec_solver, "seed": seed, **overrides}, BASELINE)
    return table


def experiment_xp(overrides: tp.Dict[str, tp.Any]):
    """The Dora XP of one experiment's overrides (the signature the grid schedules)."""
    from ..train import main
    return main.get_xp(main.value_to_argv(overrides))


CONTEXT, DIM = "codebooks_pattern.depth.context", "codebooks_pattern.depth.dim"
FIRST_BUILT = "depth (context first, dim 64)"
CAPACITY_CONTROL = "parallel (4 layers)"
SPEED_ABLATION = "depth (hidden scale 2)"
# LM name -> (pattern, extra overrides). "depth" is the default depth LM (context every, dim 128), its
# settings written out: they keep the signatures of the XPs trained before they became the default.
LMS = {"parallel": ("parallel", ()), "delay": ("delay", ()), "depth": ("depth", (f"{CONTEXT}=every", f"{DIM}=128")),
       # The depth LM as first built (the defaults until 2026-12-04), which did not beat parallel:
       FIRST_BUILT: ("depth", (f"{CONTEXT}=first", f"{DIM}=64")),
       # Which of the two changes made it win (on the baselines only):
       "depth (context every, dim 64)": ("depth", (f"{CONTEXT}=every", f"{DIM}=64")),
       "depth (context first, dim 128)": ("depth", (f"{CONTEXT}=first", f"{DIM}=128")),
       # Is the depth LM's gain its size? A parallel LM with 4 temporal layers instead of 2 has more
       # parameters than the depth LM (about 1.05 M against 1.02 M).
       CAPACITY_CONTROL: ("parallel", ("transformer_lm.num_layers=4",)),
       # Speed: at this size a depth step's cost is its matrix products, most of them the feed-forward's;
       # does a feed-forward half as wide keep the gain (docs/research/PERFORMANCE.md)?
       SPEED_ABLATION: ("depth", (f"{CONTEXT}=every", f"{DIM}=128", "codebooks_pattern.depth.hidden_scale=2"))}
DEPTH_ABLATIONS = ("depth (context every, dim 64)", "depth (context first, dim 128)")
ABLATIONS = (*DEPTH_ABLATIONS, CAPACITY_CONTROL, SPEED_ABLATION)  # trained on the baselines only
# variant -> the codec it is compared with, in the order they train (the one-run schedule first: it is
# what ``dora run`` would be; then the ×5 schedule, added once it gave the largest cut on the whole split;
# then the product given the local context, the candidate aimed at what the LMs pay for; then the ×5
# schedule at half the gradient share, which kept most of the cut at a fraction of the SI-SNR cost; then
# the one-run schedule at ×10, the longest budget; then the pilot of the loss given the past and of the
# predictability term).
LM_PAIRS = {SCHEDULE: BASELINE, "fine-tune λ=3000 pooled": FINETUNE_REFERENCE, LONG_SCHEDULE: LONG_BASELINE,
            CHUNK: FINETUNE_REFERENCE, LONG_SCHEDULE_HALF: LONG_BASELINE, LONGER_SCHEDULE: LONGER_BASELINE,
            PAST: BASELINE, PREDICTABLE: BASELINE}

# The LMs' own run-to-run spread: every LM on the first seed's baseline again with another LM seed.
REPEAT_CODEC = BASELINE
REPEAT_SEED_OFFSET = 100


def lm_codecs() -> tp.List[str]:
    """Every codec label the LMs train on, references first within each pair, each once."""
    return list(dict.fromkeys(label for pair in LM_PAIRS.items() for label in reversed(pair)))


def lm_argv(codec_sig: str, lm: str, seed: int) -> tp.List[str]:
    """The overrides of LM ``lm`` (a key of :data:`LMS`) on a codec's tokens."""
    pattern, extra = LMS[lm]
    return SMALL.lm_argv(codec_sig, pattern, seed, extra)
