"""EnCodec training with the independence-promoting loss (``solver: compression_mmd``).

AudioCraft's compression solver, plus ``mmd.weight * L_inde`` on the per-codebook streams. The
loss is not a loss on decoded audio, so it stays outside the balancer: it joins the quantizer's
commitment penalty, which AudioCraft's solver already backpropagates on its own before the
balanced losses. Everything else (model, checkpoints, stages) is AudioCraft's, so checkpoints load
with AudioCraft's `CompressionModel` loaders.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import typing as tp

import flashy
import omegaconf
import torch

from audiocraft.adversarial import AdversarialLoss
from audiocraft.solvers.compression import CompressionSolver, evaluate_audio_reconstruction
from audiocraft.utils import checkpoint
from audiocraft.utils.utils import get_dataset_from_loader, get_pool_executor

from ..registry import register_solver
from ..losses import MMDIndependence, MMDIndependenceLoss, mmd_independence
from ..losses.mmd import DEFAULT_CHUNK_FRAMES, PRODUCTS
from ..losses.bank import RowBank
from ..losses.soft_mi import SoftMutualInformationLoss
from ..losses.distributed import SCOPES, gather_streams
from ..quantization import CapturedStreams, capture_streams
from ..quantization.codebook import use_consistent_codebooks
from ..quantization.streams import STREAM_SOURCES, stream_dimension
from ..errors import ConfigError
from ..metrics.usage import code_histograms
from .independence_adversary import build_adversary, validate_adversary_config
from .past_predictor import build_past_predictor, validate_past_predictor_config
from .resume import check_resumable, check_warm_start
from .scope_check import check_global_scope
from .macro_batch import MacroBatch
from .mmd_weight import MMDWeight
from . import dependence_plugins, quality_plugins  # noqa: F401  (register the plugins evaluate.plugins names)
from .evaluation import EvaluationBatch, build_evaluation_plugins
from .rng_state import GeneratorState, GlobalRNGState
from .step_guard import NonFiniteStepGuard, StatefulAverager

ALIGNMENTS = ("delay", "parallel")
# The estimator name that selects the soft-assignment MI (losses/soft_mi.py) instead of a kernel estimator.
SOFT_MI = "soft_mi"


def alignment_delays(mmd_cfg: omegaconf.DictConfig, num_codebooks: int) -> tp.List[int]:
    """Per-codebook delays of the loss: ``mmd.delays`` if set, else those of ``mmd.alignment``."""
    if mmd_cfg.delays is not None:
        delays = [int(d) for d in mmd_cfg.delays]
        if len(delays) != num_codebooks:
            raise ConfigError(f"mmd.delays has {len(delays)} values but the model has {num_codebooks} codebooks.")
        return delays
    if mmd_cfg.alignment not in ALIGNMENTS:
        raise ConfigError(f"mmd.alignment={mmd_cfg.alignment!r} is not one of {ALIGNMENTS}.")
    return list(range(num_codebooks)) if mmd_cfg.alignment == "delay" else [0] * num_codebooks


def validate_mmd_config(cfg: omegaconf.DictConfig) -> None:
    """Rejects bad ``mmd.*`` values before anything is built."""
    mmd_cfg = cfg.mmd
    if mmd_cfg.weight is None or mmd_cfg.weight < 0:
        raise ConfigError(f"mmd.weight must be >= 0, got {mmd_cfg.weight}.")
    if int(mmd_cfg.every) < 1:
        raise ConfigError(f"mmd.every must be >= 1, got {mmd_cfg.every}.")
    if mmd_cfg.source not in STREAM_SOURCES:
        raise ConfigError(f"mmd.source={mmd_cfg.source!r} is not one of {sorted(STREAM_SOURCES)}.")
    if mmd_cfg.get("scope", "process") not in SCOPES:
        raise ConfigError(f"mmd.scope={mmd_cfg.scope!r} is not one of {SCOPES}.")
    if mmd_cfg.get("scope_check") and mmd_cfg.get("scope", "process") != "global":
        raise ConfigError(f"mmd.scope_check=true checks mmd.scope=global, got mmd.scope={mmd_cfg.scope!r}.")
    macro = mmd_cfg.get("macro_batch") or 0
    if isinstance(macro, bool) or not isinstance(macro, int) or macro < 0:
        raise ConfigError(f"mmd.macro_batch must be an int >= 0 (0: off), got {macro!r}.")
    if macro and int(mmd_cfg.every) != 1:
        raise ConfigError(f"mmd.macro_batch={macro} already sets the loss's schedule: leave mmd.every at 1.")
    bank = mmd_cfg.get("bank") or 0
    adversary = (mmd_cfg.get("adversary") or {}).get("weight") or 0
    if isinstance(bank, bool) or not isinstance(bank, int) or bank < 0:
        raise ConfigError(f"mmd.bank must be an int >= 0 (0: off), got {bank!r}.")
    if bank > 1:
        conflicts = {"mmd.macro_batch": (macro, 0), "mmd.estimator": (mmd_cfg.estimator, "hsic"),
                     "mmd.scope": (mmd_cfg.get("scope", "process"), "process"),
                     "mmd.product": (mmd_cfg.get("product", "pooled"), "pooled")}
        for key, (value, needed) in conflicts.items():
            if value != needed:
                raise ConfigError(f"mmd.bank={bank} needs {key}={needed!r}, got {value!r}.")
        q_dropout = bool((cfg.get("rvq") or {}).get("q_dropout"))
        for key, value, needed in (("mmd.adversary.weight", adversary, 0), ("rvq.q_dropout", q_dropout, False)):
            if value != needed:  # the bank's rows must keep their meaning and shape from step to step
                raise ConfigError(f"mmd.bank={bank} needs {key}={needed!r}, got {value!r}.")
        if mmd_cfg.bandwidth_scale not in ("dim", "none"):
            raise ConfigError(f"mmd.bank={bank} caches kernel sums, so it needs fixed bandwidths: "
                              f"mmd.bandwidth_scale dim or none, got {mmd_cfg.bandwidth_scale!r}.")
    validate_adversary_config(mmd_cfg)
    validate_past_predictor_config(cfg)
    if mmd_cfg.get("product", "pooled") not in PRODUCTS:
        raise ConfigError(f"mmd.product={mmd_cfg.product!r} is not one of {PRODUCTS}.")
    chunk = mmd_cfg.get("chunk_frames", DEFAULT_CHUNK_FRAMES)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 2:
        raise ConfigError(f"mmd.chunk_frames must be an int >= 2 (aligned frames per chunk), got {chunk!r}.")
    if mmd_cfg.estimator == SOFT_MI:
        temperature = mmd_cfg.get("temperature", 1.)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ConfigError(f"mmd.temperature must be > 0 (soft_mi), got {temperature!r}.")
        if mmd_cfg.source != "quantized":
            raise ConfigError(f"mmd.estimator=soft_mi assigns each stage's input to that stage's codebook; "
                              f"mmd.source={mmd_cfg.source!r} streams have no codebook: use mmd.source=quantized.")
        if mmd_cfg.get("product") == "chunk":
            raise ConfigError("mmd.estimator=soft_mi forms its null from all rows or from each clip's: "
                              "mmd.product pooled or clip, got 'chunk'.")
        conflicts = {"mmd.macro_batch": (macro, 0), "mmd.bank": (bank, 0),
                     "mmd.adversary.weight": (adversary, 0),
                     "mmd.scope_check": (bool(mmd_cfg.get("scope_check")), False)}
        for key, (value, needed) in conflicts.items():
            if value != needed:
                raise ConfigError(f"mmd.estimator=soft_mi needs {key}={needed!r}, got {value!r}.")
    for key in ("warmup", "ramp"):
        value = mmd_cfg.get(key) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"mmd.{key} must be an int >= 0 (training updates), got {value!r}.")
    target = mmd_cfg.get("target_grad_ratio")
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not target > 0:
            raise ConfigError(f"mmd.target_grad_ratio must be > 0 or null, got {target!r}.")
        if not mmd_cfg.weight > 0:
            raise ConfigError("mmd.target_grad_ratio adapts mmd.weight from its starting value: set mmd.weight > 0.")
        if macro:
            raise ConfigError(f"mmd.target_grad_ratio needs the per-step loss's gradient ratio; "
                              f"mmd.macro_batch={macro} computes the loss outside the step: set one of them only.")
        if adversary:
            raise ConfigError("mmd.target_grad_ratio steers the kernel loss's own gradient; with mmd.adversary.weight "
                              "> 0 the measured gradient mixes both terms: set one of them only.")
    updates = cfg.optim.get("updates_per_epoch")
    if macro and updates and updates % macro:
        raise ConfigError(f"optim.updates_per_epoch={updates} is not a multiple of mmd.macro_batch={macro}: "
                          "a macro-batch must not straddle an epoch (checkpoints hold no half macro-batch).")


def log_statistic(result: MMDIndependence, metrics: dict) -> None:
    """The loss's ``mmd`` (unclamped), ``mmd_clamped`` and ``mmd_rows`` metrics."""
    metrics.update(mmd=result.estimate.detach(), mmd_clamped=float(result.clamped), mmd_rows=float(result.num_rows))


def reconstruction_metrics(y_pred: torch.Tensor, y: torch.Tensor, cfg: omegaconf.DictConfig) -> dict:
    """AudioCraft's reconstruction metrics; module-level so that spawned workers import this package."""
    return evaluate_audio_reconstruction(y_pred, y, cfg)


@register_solver("compression_mmd")
class MMDCompressionSolver(CompressionSolver):
    """Compression solver adding the MMD independence loss between codebook streams.

    Config (``mmd`` section, see ``config/solver/compression/default.yaml``): weight, stream source,
    alignment or explicit delays, bandwidths and their scale, estimator, standardisation, clamp,
    ``every`` (compute on one training step out of ``every``), ``macro_batch`` (the paper's schedule,
    see :mod:`.macro_batch`), ``scope`` (``process`` or ``global``: the rows of every process, see
    :mod:`..losses.distributed`) and ``log_grad_ratio`` (per-step mode only).
    Metrics: ``mmd`` (unclamped estimate), ``mmd_loss`` (weighted, as backpropagated),
    ``mmd_clamped`` (fraction of steps where the clamp zeroed the loss), ``mmd_rows`` (N),
    ``mmd_codebooks`` (active codebooks the loss used: fewer with quantizer dropout),
    ``mmd_grad_ratio`` (gradient norm of the weighted loss over that of all other losses, at the
    encoder output), ``usage_q{k}`` (fraction of codebook k's entries used in the batch),
    ``nonfinite_step`` (fraction of training steps dropped because a gradient was NaN or infinite;
    see :mod:`.step_guard`). With ``mmd.adversary.weight > 0`` (:mod:`.independence_adversary`):
    ``mmd_adv`` (the MMD² under the learned kernel, as the encoder minimises it) and
    ``mmd_adv_critic`` (the critic's objective at its update); ``mmd_loss`` then holds both terms.
    With ``mmd.condition=past`` (:mod:`.past_predictor`) ``mmd`` is the statistic on the innovations
    given the past, with ``mmd.condition=neighbours`` the MMD² to the product formed among rows of
    nearest contexts (:mod:`..losses.conditional_product`), and with a predictor (``condition`` not
    ``none``, or ``mmd.predictability > 0``):
    ``predictor_nll`` (g's Gaussian NLL of the aligned, standardised streams, nats per feature and
    step, after its update), ``predictor_nll_q{k}`` (the same per codebook: how well the past
    predicts codebook k) and ``predictor_nll_update`` (at its update); ``mmd_loss`` then holds
    ``mmd.predictability * predictor_nll`` too.
    """

    def __init__(self, cfg: omegaconf.DictConfig):
        validate_mmd_config(cfg)
        super().__init__(cfg)
        quantizer: tp.Any = self.model.quantizer  # an RVQ or a grouped quantizer, read by duck typing
        num_codebooks = quantizer.total_codebooks
        delays = alignment_delays(cfg.mmd, num_codebooks)
        frames = int(cfg.dataset.segment_duration * self.model.frame_rate)
        macro = cfg.mmd.get("macro_batch") or 0
        batches = macro or 1
        rows = batches * cfg.dataset.batch_size * (frames - max(delays))
        if rows <= num_codebooks:  # 2 rows for any U-statistic, K + 1 for the debiased permutation estimator
            raise ConfigError(
                f"The loss sees {rows} row(s) (mmd.macro_batch={batches} batch(es) x dataset.batch_size="
                f"{cfg.dataset.batch_size} per process x ({frames} frames - max delay {max(delays)})); it needs at "
                f"least 2 and more than the {num_codebooks} codebooks: raise dataset.batch_size, "
                "dataset.segment_duration or mmd.macro_batch.")
        if cfg.mmd.get("condition", "none") == "neighbours" and int(cfg.mmd.predictor.neighbours) >= rows:
            raise ConfigError(f"mmd.predictor.neighbours={cfg.mmd.predictor.neighbours} must be below the {rows} rows "
                              "the loss sees: lower it or raise dataset.batch_size.")
        product, chunk = cfg.mmd.get("product", "pooled"), cfg.mmd.get("chunk_frames", DEFAULT_CHUNK_FRAMES)
        if product != "pooled":  # the estimator runs on each clip's (chunk's) rows
            clip_rows = frames - max(delays)
            group = chunk if product == "chunk" else clip_rows
            if clip_rows < group:
                raise ConfigError(f"mmd.product=chunk needs mmd.chunk_frames={chunk} aligned frames per clip; a clip "
                                  f"has {frames} frames - max delay {max(delays)}: lower mmd.chunk_frames or raise "
                                  "dataset.segment_duration.")
            if group <= num_codebooks:
                raise ConfigError(f"mmd.product={product} estimates the loss on {group} rows at a time; it needs more "
                                  f"than the {num_codebooks} codebooks: raise mmd.chunk_frames or "
                                  "dataset.segment_duration.")
        self.macro_batch = MacroBatch(macro) if macro else None
        self.mmd_weight = MMDWeight(cfg.mmd.weight, cfg.mmd.get("warmup") or 0, cfg.mmd.get("ramp") or 0,
                                    cfg.mmd.get("target_grad_ratio"))
        self.training_update = 0  # updates since this run's start (epoch - 1) * updates_per_epoch + step
        bank = cfg.mmd.get("bank") or 0
        self.row_bank = RowBank(bank - 1) if bank > 1 else None
        self.mmd_loss: tp.Union[SoftMutualInformationLoss, MMDIndependenceLoss]
        try:
            if cfg.mmd.estimator == SOFT_MI:
                self.mmd_loss = SoftMutualInformationLoss(delays=delays, temperature=cfg.mmd.temperature,
                                                          product=product, clamp=cfg.mmd.clamp)
            else:
                self.mmd_loss = MMDIndependenceLoss(
                    delays=delays, bandwidths=list(cfg.mmd.bandwidths), bandwidth_scale=cfg.mmd.bandwidth_scale,
                    estimator=cfg.mmd.estimator, standardize=cfg.mmd.standardize, clamp=cfg.mmd.clamp,
                    product=product, chunk_frames=chunk)
        except ValueError as error:
            raise ConfigError(f"mmd: {error}") from error
        try:
            build_evaluation_plugins(cfg.evaluate.get("plugins", []), self)  # fail on unknown names now
        except ValueError as error:
            raise ConfigError(f"evaluate.plugins: {error}") from error
        # soft_mi trains no adversary (validate_mmd_config).
        self.mmd_adversary = (None if isinstance(self.mmd_loss, SoftMutualInformationLoss) else
                              build_adversary(cfg, self.mmd_loss, num_codebooks, stream_dimension(self.model)))
        if self.mmd_adversary is not None:
            self.mmd_adversary.critic.to(self.device)
            self.register_stateful("mmd_adversary")
        self.past_predictor = build_past_predictor(cfg, delays, stream_dimension(self.model))
        # The estimator on innovations: the same options, on rows the predictor already aligned.
        self.innovations_loss: tp.Optional[MMDIndependenceLoss] = None
        if self.past_predictor is not None:
            self.past_predictor.predictor.to(self.device)
            self.register_stateful("past_predictor")
            if cfg.mmd.get("condition", "none") == "past" and isinstance(self.mmd_loss, MMDIndependenceLoss):
                options = {**self.mmd_loss.options(), "delays": None}
                self.innovations_loss = MMDIndependenceLoss(clamp=self.mmd_loss.clamp, **options)
        self.mmd_rng = torch.Generator().manual_seed(cfg.seed)
        self._scope_checked = False
        self.mmd_rng_state = GeneratorState(self.mmd_rng)
        # The balancer's running gradient norms as a state: checkpointed, and rolled back with the
        # rest of a step whose gradients are not finite.
        self.balancer.averager = StatefulAverager(self.cfg.balancer.ema_decay or 1.0)
        self.global_rng_state = GlobalRNGState()
        self.register_stateful("mmd_rng_state", "global_rng_state", "balancer.averager")
        if self.mmd_weight.target_grad_ratio is not None:  # warmup and ramp follow from the update index alone
            self.register_stateful("mmd_weight")
        if self.row_bank is not None:
            self.register_stateful("row_bank")
        adversarial_losses = tp.cast(tp.Iterable[AdversarialLoss], self.adv_losses.values())  # an nn.ModuleDict
        self.step_guard = NonFiniteStepGuard(
            self.model, [self.optimizer, *(adversary.optimizer for adversary in adversarial_losses),
                         *([self.mmd_adversary.optimizer] if self.mmd_adversary is not None else []),
                         *([self.past_predictor.optimizer] if self.past_predictor is not None else [])],
            states=[self.balancer.averager])

    def load_state_dict(self, state: dict) -> None:
        check_resumable(state.get("xp.cfg"), self.cfg, str(self.checkpoint_path()))
        if self.cfg.continue_from and "xp.cfg" not in state:  # a warm start: AudioCraft kept only best_state
            check_warm_start(state.get("best_state", {}).get("model"), self.model, self.cfg.continue_from,
                             self._continue_from_cfg, self.cfg)
        super().load_state_dict(state)

    def _continue_from_cfg(self) -> tp.Optional[omegaconf.DictConfig]:
        if str(self.cfg.continue_from).startswith("//pretrained/"):
            return None
        path = checkpoint.resolve_checkpoint_path(str(self.cfg.continue_from), use_fsdp=False)
        saved = torch.load(path, map_location="cpu", weights_only=False) if path is not None else {}
        return saved.get("xp.cfg")

    def build_model(self):
        super().build_model()
        if self.cfg.get("consistent_codebooks", False):
            use_consistent_codebooks(self.model)
            self.logger.info("EMA codebooks: ConsistentEMACodebook (consistent_codebooks=true)")

    def mmd_statistic(self, captured: CapturedStreams) -> MMDIndependence:
        """The loss's statistic on the ``captured`` streams of the active codebooks (K >= 2), unclamped and
        without gradient (for evaluation)."""
        loss = self.mmd_loss.first_codebooks(len(captured.stream_list))
        with torch.no_grad():
            if isinstance(loss, SoftMutualInformationLoss):
                loss(captured.inputs, captured.codebooks, generator=self.mmd_rng)
                assert loss.last_result is not None
                return loss.last_result
            return mmd_independence(captured.streams, clamp=False, generator=self.mmd_rng, **loss.options())

    @contextlib.contextmanager
    def _independence_loss(self, captured: CapturedStreams, metrics: dict) -> tp.Iterator[None]:
        """While active, the quantizer's penalty carries the independence terms (``weight * L_inde``,
        plus the adversary's) and ``metrics`` fills in."""
        latent_grads: tp.List[torch.Tensor] = []

        def add_loss(module, inputs, qres):
            weighted = self._independence_terms(captured, self.is_training and torch.is_grad_enabled(), metrics)
            if weighted is None:
                return qres
            if self.cfg.mmd.log_grad_ratio or self.mmd_weight.target_grad_ratio is not None:
                (mmd_grad,) = torch.autograd.grad(weighted, captured.latent, retain_graph=True)
                metrics["_mmd_grad"] = mmd_grad
                captured.latent.register_hook(lambda grad: latent_grads.append(grad.detach()))
            metrics["_commitment"] = qres.penalty.detach()
            qres.penalty = qres.penalty + weighted
            return qres

        quantizer: tp.Any = self.model.quantizer  # an RVQ or a grouped quantizer, read by duck typing
        handle = quantizer.register_forward_hook(add_loss)
        try:
            yield
        finally:
            handle.remove()
        if "_commitment" in metrics:
            metrics["penalty"] = metrics.pop("_commitment")  # keep AudioCraft's meaning of `penalty`
        mmd_grad = metrics.pop("_mmd_grad", None)
        if mmd_grad is not None and latent_grads:
            other = sum(latent_grads) - mmd_grad
            metrics["mmd_grad_ratio"] = mmd_grad.norm() / other.norm().clamp(min=1e-12)
            self.mmd_weight.observe(float(mmd_grad.norm()), float(other.norm()), metrics["mmd_weight"])

    def train(self):
        # AudioCraft's compression solver leaves the dataset's epoch unset, so training segments are
        # drawn from the process's RNG history; seeded by epoch (as MusicGen's solver does), a
        # resumed run trains on the same segments as the run it continues.
        get_dataset_from_loader(self.dataloaders["train"]).current_epoch = self.epoch
        return super().train()

    def run_step(self, idx: int, batch: torch.Tensor, metrics: dict):
        if not self.is_training:
            return self._run_step(idx, batch, metrics)
        with self.step_guard.step():
            metrics = self._run_step(idx, batch, metrics)
        # Averaged over the epoch: the fraction of steps dropped for non-finite gradients.
        metrics["nonfinite_step"] = float(self.step_guard.skipped)
        if self.step_guard.skipped:
            self.logger.warning("Step %d dropped: non-finite gradients (%d dropped so far in this process); "
                                "weights, codebooks and balancer state unchanged.", idx, self.step_guard.num_skipped)
        return metrics

    def _run_step(self, idx: int, batch: torch.Tensor, metrics: dict):
        if self.is_training:
            self.training_update = (self.epoch - 1) * int(self.cfg.optim.updates_per_epoch) + idx
        if self.is_training and idx % int(self.cfg.mmd.every) != 0:
            return super().run_step(idx, batch, metrics)
        mmd_metrics: dict = {}
        if self.is_training and self.cfg.mmd.get("scope_check") and not self._scope_checked:
            self._check_global_scope(batch.to(self.device), mmd_metrics)
        macro_batch = self.macro_batch if self.is_training else None
        if macro_batch is not None and macro_batch.add(batch.to(self.device)):
            self._macro_batch_loss(mmd_metrics)  # its gradient joins this step's update
        with capture_streams(self.model, self.cfg.mmd.source) as captured, \
                (contextlib.nullcontext() if macro_batch is not None
                 else self._independence_loss(captured, mmd_metrics)):
            metrics = super().run_step(idx, batch, metrics)
        metrics.update(mmd_metrics)
        quantizer: tp.Any = self.model.quantizer  # an RVQ or a grouped quantizer, read by duck typing
        usage = (code_histograms(captured.codes, quantizer.bins) > 0).float().mean(dim=1)
        metrics.update({f"usage_q{k}": value for k, value in enumerate(usage.tolist())})
        return metrics

    def _check_global_scope(self, batch: torch.Tensor, metrics: dict) -> None:
        """``mmd.scope_check``: once per run, the gathered loss against one process's (:mod:`.scope_check`)."""
        self._scope_checked = True
        if flashy.distrib.world_size() < 2:
            self.logger.warning("mmd.scope_check: a single process, nothing to compare; skipped.")
            return
        if not isinstance(self.mmd_loss, MMDIndependenceLoss):  # refused by validate_mmd_config
            raise ConfigError("mmd.scope_check checks a kernel estimator's loss, not mmd.estimator=soft_mi.")
        check = check_global_scope(self.model, self.cfg.mmd.source, self.mmd_loss, batch, seed=self.cfg.seed)
        metrics.update(check.metrics())
        self.logger.info("mmd.scope_check over %d processes: loss %.6g, relative errors %.2e (loss), %.2e (gradient)",
                         check.world_size, check.loss, check.loss_error, check.grad_error)
        if not check.passed:
            raise RuntimeError(f"mmd.scope_check failed: {check}")

    def _independence_terms(self, captured: CapturedStreams, train: bool, metrics: dict) -> tp.Optional[torch.Tensor]:
        """``weight * L_inde`` plus, with the adversary on, ``adversary.weight * L_adv`` after a critic
        update, on the streams of this pass's active codebooks; logged into ``metrics``.

        With quantizer dropout (``rvq.q_dropout``) or a lower bandwidth an RVQ runs only its first
        K stages; the loss then uses those K codebooks and their delays. Returns the sum to
        backpropagate, or None: outside training, with nothing weighted, or when K < 2 (no pair of
        codebooks to make independent: the step trains without the loss).
        """
        num_active = len(captured.stream_list)
        metrics["mmd_codebooks"] = float(num_active)
        if num_active < 2:
            return None
        soft = isinstance(self.mmd_loss, SoftMutualInformationLoss)
        rows = None if soft else self._loss_rows(captured.streams)  # soft_mi reads the stages' inputs instead
        weight = self.mmd_weight(self.training_update) if train else 0.
        if train:
            metrics["mmd_weight"] = weight
        loss_fn = self.mmd_loss.first_codebooks(num_active)
        past = None
        if self.past_predictor is not None and rows is not None:  # soft_mi is refused with a predictor
            if train:  # g first, on detached rows, as the adversary's critic
                metrics["predictor_nll_update"] = self.past_predictor.train_predictor(rows)
            with torch.set_grad_enabled(train):
                past = self.past_predictor(rows)
            metrics["predictor_nll"] = past.nll.detach()
            metrics.update({f"predictor_nll_q{k}": value for k, value in enumerate(past.nll_per_codebook.tolist())})
        result: tp.Optional[MMDIndependence]
        with torch.set_grad_enabled(train and weight > 0):
            if soft:
                loss_fn(self._loss_rows(captured.inputs), captured.codebooks, generator=self.mmd_rng)
                result = loss_fn.last_result
            elif self.innovations_loss is not None and past is not None:
                self.innovations_loss(past.innovations, generator=self.mmd_rng)
                result = self.innovations_loss.last_result
            elif self.cfg.mmd.get("condition", "none") == "neighbours" and self.past_predictor is not None:
                assert isinstance(loss_fn, MMDIndependenceLoss) and rows is not None  # soft_mi refused
                result = self.past_predictor.conditional_product(rows, loss_fn, self.mmd_rng)
            else:
                loss_fn(rows, generator=self.mmd_rng, bank=self.row_bank if self.is_training else None)
                result = loss_fn.last_result
        assert result is not None
        log_statistic(result, metrics)
        terms = [weight * result.loss] if train and weight > 0 and result.loss.requires_grad else []
        predictability = float(self.cfg.mmd.get("predictability") or 0)
        if train and predictability > 0 and past is not None:
            terms.append(predictability * past.nll)
        if self.mmd_adversary is not None:
            if rows is None:  # soft_mi builds no adversary (__init__)
                raise ConfigError("mmd.adversary reads the streams of a kernel estimator, not mmd.estimator=soft_mi.")
            if train:  # the critic first, on detached rows, as AudioCraft trains its discriminators
                metrics["mmd_adv_critic"] = self.mmd_adversary.train_critic(rows, self.mmd_rng)
            with torch.set_grad_enabled(train):
                adversarial = self.mmd_adversary(rows, self.mmd_rng)
            metrics["mmd_adv"] = adversarial.estimate.detach()
            if train and adversarial.loss.requires_grad:
                terms.append(float(self.cfg.mmd.adversary.weight) * adversarial.loss)
        if not terms:
            return None
        weighted = tp.cast(torch.Tensor, sum(terms))  # terms is not empty
        metrics["mmd_loss"] = weighted.detach()
        return weighted

    def _loss_rows(self, streams: torch.Tensor) -> torch.Tensor:
        """This process's streams, or every process's with ``mmd.scope=global`` (:mod:`..losses.distributed`)."""
        return gather_streams(streams) if self.cfg.mmd.get("scope", "process") == "global" else streams

    def _macro_batch_loss(self, metrics: dict) -> None:
        """The independence terms on the completed macro-batch, backpropagated into the encoder's grads."""
        assert self.macro_batch is not None
        with torch.set_grad_enabled(float(self.cfg.mmd.weight) > 0 or self.mmd_adversary is not None):
            streams = self.macro_batch.streams(self.model, self.cfg.mmd.source)
        weighted = self._independence_terms(CapturedStreams(stream_list=list(streams.unbind(1))), True, metrics)
        if weighted is not None:
            weighted.backward()

    def evaluate(self) -> dict:
        """Reconstruction metrics (AudioCraft's) plus the ``evaluate.plugins`` metrics, in one pass."""
        self.model.eval()
        stage = str(self.current_stage)
        loader = self.dataloaders["evaluate"]
        plugins = build_evaluation_plugins(self.cfg.evaluate.get("plugins", []), self)
        average = flashy.averager()
        metrics: dict = {}
        pendings = []
        with get_pool_executor(self.cfg.evaluate.num_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for batch in self.log_progress(f"{stage} inference", loader, total=len(loader), updates=self.log_updates):
                audio = batch.to(self.device)
                with torch.no_grad(), capture_streams(self.model, self.cfg.mmd.source) as captured:
                    reconstruction = self.model(audio).x
                pendings.append(pool.submit(reconstruction_metrics, reconstruction.cpu(), batch.cpu(), self.cfg))
                for plugin in plugins.values():
                    plugin.update(EvaluationBatch(audio, reconstruction, captured))
            for pending in self.log_progress(f"{stage} metrics", pendings, updates=self.log_updates):
                metrics = average(pending.result())
        metrics = flashy.distrib.average_metrics(metrics, len(loader))
        for plugin in plugins.values():
            metrics.update(plugin.compute())
        return metrics
