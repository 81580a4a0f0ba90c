"""What the reproduction study trains: its scales, codec and LM specs, and how the "best" MMD codec is chosen.

Stage 1 (grid ``study_codecs``): the λ = 0 baseline codec at every seed, and the codecs with the loss
(alignment × λ × bandwidth choice) at the first seed, all with the same budget.

Stage 2 (grid ``study_lms``): picks the best MMD codec of stage 1 (:func:`select_best`), trains it at
the other seeds, and trains one LM per pattern on the tokens of the baseline and of the best codec,
each seed's LMs on that seed's codecs. LMs wait for their codec: stage 2 runs again once the second
seed's codecs have finished (``python -m audiocraft_mmd.study run`` does it all, locally and resumably).

The grids schedule these specs; the report reads the same specs to find the XPs they trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
import typing as tp

from ..losses.mmd import DEFAULT_BANDWIDTHS, PAPER_BANDWIDTHS
from ..utils.xps import is_finished, last_stage_metrics

# Kernel bandwidth choices (see docs/TRAINING.md "Bandwidths"): the paper's absolute list, multiples
# of K·D, and the median heuristic.
BANDWIDTH_CHOICES: tp.Dict[str, dict] = {
    "paper": {"mmd.bandwidth_scale": "none", "mmd.bandwidths": list(PAPER_BANDWIDTHS)},
    "dim": {"mmd.bandwidth_scale": "dim", "mmd.bandwidths": list(DEFAULT_BANDWIDTHS)},
    "median": {"mmd.bandwidth_scale": "median", "mmd.bandwidths": list(DEFAULT_BANDWIDTHS)},
}
ALIGNMENTS = ("parallel", "delay")
# Every XP asks for 2 CPU cores and no GPU (the CPU study), or the config's GPUs (paper scale).
CPU_SLURM = {"gpus": 0, "cpus_per_task": 2, "mem_per_gpu": 4, "time": 30}


def check_data_overrides() -> tp.Dict[str, tp.Any]:
    """Overrides training the check grids on ``$AUDIOCRAFT_MMD_CHECK_EGS/{train,valid,evaluate,generate}``
    (no automatic preparation) when that variable is set, else none (the default data)."""
    from ..train import SPLITS
    egs = os.environ.get("AUDIOCRAFT_MMD_CHECK_EGS")
    if not egs:
        return {}
    return {"prepare_data.source": None, **{f"datasource.{split}": os.path.join(egs, split) for split in SPLITS}}


# The selection's gates: an MMD codec qualifies when it loses at most this much SI-SNR (dB) and mean
# codebook entropy (bits) against the baseline at the same seed; a collapsed codebook is trivially
# independent, so dependence is only compared between codecs of (about) equal entropy.
MAX_SISNR_LOSS_DB = 1.
MAX_ENTROPY_LOSS_BITS = 0.25


@dataclass(frozen=True)
class CodecSpec:
    """One codec of the study: the loss's weight, alignment and bandwidth choice, the seed, and any
    other overrides (the probes')."""
    weight: float
    alignment: str
    bandwidth: str
    seed: int
    extra: tp.Tuple[tp.Tuple[str, tp.Any], ...] = ()

    @property
    def is_baseline(self) -> bool:
        return self.weight == 0

    @property
    def variant_name(self) -> str:
        """What the codec is, whatever its seed: ``λ=10 delay dim`` or ``baseline``, and any extra override."""
        name = "baseline" if self.is_baseline else f"λ={self.weight:g} {self.alignment} {self.bandwidth}"
        return " ".join([name, *(f"{key}={value}" for key, value in self.extra)])

    @property
    def name(self) -> str:
        return f"{self.variant_name} seed={self.seed}"

    def variant(self) -> tp.Tuple[tp.Any, ...]:
        """What the codec is, whatever its seed."""
        return (self.weight, self.alignment, self.bandwidth, *self.extra)

    def with_seed(self, seed: int) -> "CodecSpec":
        return CodecSpec(self.weight, self.alignment, self.bandwidth, seed, self.extra)


@dataclass(frozen=True)
class Probe:
    """A codec trained to find out why the loss does (not) reduce dependence, and what to compare it with."""
    question: str
    spec: CodecSpec
    reference: CodecSpec


@dataclass(frozen=True)
class LMProbe:
    """LMs of every pattern trained with other overrides on each seed's baseline and best MMD codec:
    does the LM comparison change with the LM's own budget?"""
    question: str
    overrides: tp.Tuple[str, ...]


@dataclass(frozen=True)
class StudyScale:
    """A size of the study: the solvers, the axes and the Slurm request of its XPs.

    Attributes:
        codec_solver: The codec solver config (``solver=...``); the baseline is it at ``mmd.weight=0``.
        lm_solver: The LM solver config.
        weights: The λ values of the MMD codecs (our normalisation, see docs/METHOD.md).
        bandwidths: Keys of :data:`grids._sweep.BANDWIDTH_CHOICES`.
        seeds: Every seed of the main comparison; the first one is the sweep's.
        patterns: The LMs' codebook patterns (``unroll`` and ``depth`` are the joint LMs the gaps are
            measured against, see :func:`audiocraft_mmd.study.gap_closure`).
        slurm: Slurm request of every XP (Dora's ``launcher.slurm_`` keywords).
        codec_extra: Extra overrides of every codec XP.
        lm_overrides: Extra overrides of every LM XP.
        probes: Codecs of the ``study_probes`` grid (:class:`Probe`).
        lm_probes: LMs of the ``study_lm_probes`` grid (:class:`LMProbe`).
        dependence_segment: Seconds per segment when the report measures dependence on the evaluate split.
        lags: Frames between the codes of the report's lagged MI (baseline and best codec; within a segment).
        grid_suffix: Ends the names of the scale's grids (``study_codecs<suffix>``, ``study_lms<suffix>``,
            and its probe grids).
    """
    codec_solver: str
    lm_solver: str
    weights: tp.Tuple[float, ...]
    bandwidths: tp.Tuple[str, ...]
    seeds: tp.Tuple[int, ...]
    patterns: tp.Tuple[str, ...] = ("parallel", "delay", "unroll", "depth")
    alignments: tp.Tuple[str, ...] = ALIGNMENTS
    slurm: tp.Dict[str, tp.Any] = field(default_factory=dict)
    codec_extra: tp.Dict[str, tp.Any] = field(default_factory=dict)
    lm_overrides: tp.Tuple[str, ...] = ()
    grid_suffix: str = ""
    dependence_segment: float = 10.
    lags: tp.Tuple[int, ...] = (0, 1, 2, 4, 8, 16, 50, 200)
    probes: tp.Tuple[Probe, ...] = ()
    lm_probes: tp.Tuple[LMProbe, ...] = ()

    @property
    def codec_grid(self) -> str:
        return f"study_codecs{self.grid_suffix}"

    @property
    def lm_grid(self) -> str:
        return f"study_lms{self.grid_suffix}"

    @property
    def probe_grids(self) -> tp.List[str]:
        """The probe grids of this scale (``study_probes<suffix>``, ``study_lm_probes<suffix>``), if it has probes."""
        return ([f"study_probes{self.grid_suffix}"] if self.probes else []) + \
            ([f"study_lm_probes{self.grid_suffix}"] if self.lm_probes else [])

    def baseline(self, seed: int) -> CodecSpec:
        return CodecSpec(0., "delay", "dim", seed)

    def stage1(self) -> tp.List[CodecSpec]:
        """The baseline at every seed, then every MMD variant at the first seed."""
        specs = [self.baseline(seed) for seed in self.seeds]
        for alignment in self.alignments:
            for weight in self.weights:
                for bandwidth in self.bandwidths:
                    specs.append(CodecSpec(weight, alignment, bandwidth, self.seeds[0]))
        return specs

    def compared(self, best: CodecSpec) -> tp.List[CodecSpec]:
        """The codecs of the main comparison: the baseline and ``best`` at every seed, seed by seed."""
        return [spec for seed in self.seeds for spec in (self.baseline(seed), best.with_seed(seed))]

    def codec_overrides(self, spec: CodecSpec) -> tp.Dict[str, tp.Any]:
        overrides: tp.Dict[str, tp.Any] = {"solver": self.codec_solver, **self.codec_extra, "seed": spec.seed,
                                           "mmd.weight": spec.weight}
        if not spec.is_baseline:
            overrides["mmd.alignment"] = spec.alignment
            overrides.update(BANDWIDTH_CHOICES[spec.bandwidth])
        overrides.update(dict(spec.extra))
        return overrides

    def lm_argv(self, codec_sig: str, pattern: str, seed: int, extra: tp.Sequence[str] = ()) -> tp.List[str]:
        """The LM XP's overrides (pattern consistency handled as in ``compare_patterns``); ``extra``: a
        probe's."""
        from ..metrics.lm_measures import lm_overrides
        return lm_overrides(f"//sig/{codec_sig}", pattern, [f"seed={seed}", *self.lm_overrides, *extra],
                            solver=self.lm_solver)


def codec_xp(scale: StudyScale, spec: CodecSpec):
    """The Dora XP of a codec spec (the same signature as the one its grid schedules)."""
    from ..train import main
    return main.get_xp(main.value_to_argv(scale.codec_overrides(spec)))


def lm_xp(scale: StudyScale, codec_sig: str, pattern: str, seed: int, extra: tp.Sequence[str] = ()):
    from ..train import main
    return main.get_xp(scale.lm_argv(codec_sig, pattern, seed, extra))


@dataclass
class Selection:
    """The outcome of :func:`select_best`: the codec, why, and every candidate's figures."""
    best: CodecSpec
    qualified: bool
    reason: str
    candidates: tp.List[tp.Dict[str, tp.Any]]


def select_best(scale: StudyScale, evaluate: tp.Callable[[CodecSpec], tp.Dict[str, float]]) -> Selection:
    """The MMD codec of stage 1 with the lowest delay-aligned mean pairwise MI among those that pass the gates.

    Gates, against the baseline at the same seed: SI-SNR loss ≤ :data:`MAX_SISNR_LOSS_DB` and mean
    codebook entropy loss ≤ :data:`MAX_ENTROPY_LOSS_BITS`. When no codec passes, the one with the
    lowest normalised MI (``nmi_delay``, MI / min entropy) is taken and the selection says so.

    Args:
        scale: The study's size.
        evaluate: The evaluate-stage metrics of a codec (``si_snr_db``, ``entropy_mean``, ``mi_delay``,
            ``nmi_delay``); raises when the codec has not finished.
    """
    seed = scale.seeds[0]
    base = evaluate(scale.baseline(seed))
    candidates: tp.List[tp.Dict[str, tp.Any]] = []
    for spec in scale.stage1():
        if spec.is_baseline:
            continue
        metrics = evaluate(spec)
        sisnr_loss = base["si_snr_db"] - metrics["si_snr_db"]
        entropy_loss = base["entropy_mean"] - metrics["entropy_mean"]
        candidates.append({"spec": spec, "sisnr_loss_db": sisnr_loss, "entropy_loss_bits": entropy_loss,
                           "mi_delay": metrics["mi_delay"], "nmi_delay": metrics["nmi_delay"],
                           "qualified": sisnr_loss <= MAX_SISNR_LOSS_DB and entropy_loss <= MAX_ENTROPY_LOSS_BITS})
    qualified = [c for c in candidates if c["qualified"]]
    if qualified:
        best = min(qualified, key=lambda c: c["mi_delay"])
        reason = (f"lowest delay-aligned MI ({best['mi_delay']:.3f} bit, baseline {base['mi_delay']:.3f}) among "
                  f"the {len(qualified)} codecs within {MAX_SISNR_LOSS_DB:g} dB SI-SNR and "
                  f"{MAX_ENTROPY_LOSS_BITS:g} bit entropy of the baseline")
    else:
        best = min(candidates, key=lambda c: c["nmi_delay"])
        reason = (f"no codec within {MAX_SISNR_LOSS_DB:g} dB SI-SNR and {MAX_ENTROPY_LOSS_BITS:g} bit entropy of "
                  f"the baseline; lowest normalised delay-aligned MI ({best['nmi_delay']:.3f})")
    return Selection(best=best["spec"], qualified=bool(qualified), reason=reason, candidates=candidates)


def finished_evaluation(scale: StudyScale) -> tp.Callable[[CodecSpec], tp.Dict[str, float]]:
    """:func:`select_best`'s ``evaluate`` from the XPs' histories; SystemExit naming unfinished codecs."""

    def evaluate(spec: CodecSpec) -> tp.Dict[str, float]:
        xp = codec_xp(scale, spec)
        metrics = last_stage_metrics(xp, "evaluate")
        if not is_finished(xp) or "si_snr_db" not in metrics:
            raise SystemExit(f"The study's stage 1 has not finished: codec {xp.sig} ({spec.name}) has no final "
                             f"evaluation. Run stage 1 first (dora grid {scale.codec_grid}, or "
                             f"python -m audiocraft_mmd.grid local {scale.codec_grid}).")
        return metrics
    return evaluate


def _probes(weight: float, seed: int) -> tp.Tuple[Probe, ...]:
    """Why does the loss (not) reduce dependence? One change at a time to the delay-aligned, dim-scaled
    codec at ``weight``: λ, the stream the loss sees, the codebook size, the quantizer.

    More rows N and the paper's schedule come through the macro-batch (the loss every M steps on the
    last M batches, re-encoded): M = 5 multiplies N by 5 (7760 rows); its loss step takes about 7 s
    on one core, one step in five (11.6 min in all, against 8.2 for the per-step codec). Not here:
    the row bank (``mmd.bank=8``, 12.4k rows each step), whose O(n·N) kernels dominate the step on
    this small model (40-80 s per update measured while other jobs shared the cores).
    """
    def codec(w: float = weight, /, **extra: tp.Any) -> CodecSpec:
        return CodecSpec(w, "delay", "dim", seed, tuple(extra.items()))
    base, reference = codec(0.), codec()
    return (
        Probe("λ ten times larger", codec(10 * weight), base),
        Probe("the loss on the residuals after each stage instead of the quantized vectors",
              codec(**{"mmd.source": "residual"}), reference),
        Probe("the paper's macro-batch schedule: every 5 steps, the loss on the last 5 batches "
              "(5 times the rows)", codec(**{"mmd.macro_batch": 5}), reference),
        Probe("codebooks of 64 codes instead of 256 (baseline)", codec(0., **{"rvq.bins": 64}), base),
        Probe("codebooks of 64 codes instead of 256 (with the loss)", codec(**{"rvq.bins": 64}),
              codec(0., **{"rvq.bins": 64})),
        # In an RVQ every stage's straight-through stream has the same Jacobian (the identity) with
        # respect to the encoder output, so the encoder only sees the sum of the loss's per-stream
        # gradients; a grouped quantizer's streams come from separate slices of the latent.
        Probe("a grouped quantizer (4 slices of the latent, separate gradient paths) instead of the RVQ "
              "(baseline)", codec(0., model="encodec/small_grouped"), base),
        Probe("a grouped quantizer instead of the RVQ (with the loss)", codec(model="encodec/small_grouped"),
              codec(0., model="encodec/small_grouped")),
    )


# The study's LMs train 400 updates at lr 3e-3, the LM probe that trained best in the first run. The
# probes ask whether the LM comparison depends on that budget: the smaller ones, the first being the
# study's LMs until 2026-12-04 (solver=musicgen/study's own budget: the same signatures as those LMs).
_LM_BUDGET = ("optim.updates_per_epoch=100", "optim.lr=3e-3")
_LM_PROBES = (
    LMProbe("a quarter of the updates (100) at lr 1e-3", ("optim.updates_per_epoch=25", "optim.lr=1e-3")),
    LMProbe("the same updates (400) at lr 1e-3", ("optim.lr=1e-3",)),
)

SMALL = StudyScale(
    codec_solver="compression/study", lm_solver="musicgen/study",
    weights=(1., 10.), bandwidths=("dim", "median"), seeds=(2036, 2037), slurm=CPU_SLURM,
    probes=_probes(10., 2036), lm_probes=_LM_PROBES, lm_overrides=_LM_BUDGET)

# The same study at the paper's scale, for a GPU cluster: the paper's codec recipe, λ around the
# paper's 1000 in our normalisation (λ·47², docs/METHOD.md), its bandwidths beside the dimension-scaled ones,
# and MusicGen-small-sized LMs. Untested at this size here (no GPU); its configs are validated by the tests.
PAPER = StudyScale(
    codec_solver="compression/encodec_mmd_32khz", lm_solver="musicgen/mmd",
    weights=(100. * 47 ** 2, 1000. * 47 ** 2), bandwidths=("paper", "dim"), seeds=(2036, 2037),
    # sample_rate=32000 is the codec's, which the LM now reads itself; kept: it is in these XPs' signatures.
    lm_overrides=("sample_rate=32000", "transformer_lm.dim=1024", "transformer_lm.num_heads=16",
                  "transformer_lm.num_layers=24", "dataset.segment_duration=10", "optim.epochs=200",
                  "optim.updates_per_epoch=2000", "optim.lr=1e-4"),
    grid_suffix="_paper")

# The whole pipeline in a few minutes (tiny budgets, one seed, one MMD codec, two patterns: parallel and
# the joint depth LM; unroll, four times slower to generate, is left to the real scales): checks a
# set-up before the real study, and is what the tests run. The data can be pointed elsewhere with
# $AUDIOCRAFT_MMD_CHECK_EGS (as for ``slurm_check``).
_SMOKE_CODEC = {"optim.epochs": 1, "optim.updates_per_epoch": 4, "dataset.batch_size": 4,
                "dataset.valid.num_samples": 4, "dataset.evaluate.batch_size": 4,
                "dataset.evaluate.num_samples": 8, "evaluate.every": 1, "checkpoint.save_every": None}
_SMOKE_LM = {"optim.epochs": 1, "optim.updates_per_epoch": 4, "dataset.batch_size": 4,
             "dataset.valid.num_samples": 4, "checkpoint.save_every": None}
SMOKE = StudyScale(
    codec_solver="compression/study", lm_solver="musicgen/study", weights=(10.,), bandwidths=("dim",),
    alignments=("delay",), seeds=(2036,), patterns=("parallel", "depth"), slurm=CPU_SLURM,
    codec_extra={**_SMOKE_CODEC, **check_data_overrides()},
    lm_overrides=tuple(f"{key}={'null' if value is None else value}"
                       for key, value in {**_SMOKE_LM, **check_data_overrides()}.items()),
    lm_probes=(LMProbe("twice the updates", ("optim.updates_per_epoch=8",)),),
    grid_suffix="_smoke", dependence_segment=2., lags=(0, 1, 50))
