"""``dora grid independence_lms``: is a codec of grid ``independence`` a gain for the LMs? (#23, #18)

Trains parallel, delay and depth LMs (the study's LMs: ``solver=musicgen/study`` at 400 updates and lr
3e-3; the depth LM is the default one, see :data:`LMS`) on the tokens of each seed's variants in
:data:`LM_PAIRS` and of the codecs they are compared with; then the same LMs with another seed on the
first seed's baseline (their run-to-run spread), and the depth ablations on the baselines. The depth LM models each frame's codes jointly: on the reference codec
its gap to the parallel LM (codebooks 2..K) is the price of the parallel factorisation, and the share of
it a variant closes is what the loss is for. LMs whose codec has not finished wait for the next run of
this grid. Locally: ``python -m audiocraft_mmd.grid local independence_lms --jobs 2`` (resumable);
the table: ``python -m audiocraft_mmd.independence_report --lms``.
"""

import typing as tp

from ._study import SMALL, StudyLMExplorer
from .independence import (BASELINE, CHUNK, FINETUNE_REFERENCE, LONG_BASELINE, LONG_SCHEDULE, LONG_SCHEDULE_HALF,
                           LONGER_BASELINE, LONGER_SCHEDULE, SCHEDULE, experiment_xp, experiments)

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
       # does a feed-forward half as wide keep the gain (docs/PERFORMANCE.md)?
       SPEED_ABLATION: ("depth", (f"{CONTEXT}=every", f"{DIM}=128", "codebooks_pattern.depth.hidden_scale=2"))}
DEPTH_ABLATIONS = ("depth (context every, dim 64)", "depth (context first, dim 128)")
ABLATIONS = (*DEPTH_ABLATIONS, CAPACITY_CONTROL, SPEED_ABLATION)  # trained on the baselines only
# variant -> the codec it is compared with, in the order they train (the one-run schedule first: it is
# what ``dora run`` would be; then the ×5 schedule, added once it gave the largest cut on the whole split;
# then the product given the local context, the candidate aimed at what the LMs pay for; then the ×5
# schedule at half the gradient share, which kept most of the cut at a fraction of the SI-SNR cost; then
# the one-run schedule at ×10, the longest budget).
LM_PAIRS = {SCHEDULE: BASELINE, "fine-tune λ=3000 pooled": FINETUNE_REFERENCE, LONG_SCHEDULE: LONG_BASELINE,
            CHUNK: FINETUNE_REFERENCE, LONG_SCHEDULE_HALF: LONG_BASELINE, LONGER_SCHEDULE: LONGER_BASELINE}

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


@StudyLMExplorer
def explorer(launcher):
    from audiocraft_mmd.xps import is_finished
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
