"""The independence-promoting loss (Lemercier et al., ICML 2024): MMD² between the joint law of the K
per-codebook vectors and the product of its marginals, in the RKHS of a sum of Gaussian kernels.

Pipeline (see docs/METHOD.md, "The loss")::

    streams [B, K, D, T]
      -> (standardize="codebook": one mean/variance per codebook)
      -> align_streams (delay pattern)            [B, K, D, T'],  T' = T - max(delays)
      -> merge batch and time                     [N, K, D],      N = B·T'
      -> (standardize="feature": per K·D feature over the N rows)
      -> estimator (mmd_estimators)               scalar estimate: on all N rows (product="pooled"), or
                                                  on each clip's T' rows, averaged (product="clip"), or
                                                  on each chunk of a clip's rows, averaged (product="chunk")
      -> clamp at 0 (optional)                    loss

Pure torch: nothing here imports AudioCraft.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import operator
import typing as tp

import torch
from torch import nn

from .mmd_estimators import get_estimator, squared_distances

if tp.TYPE_CHECKING:
    from .bank import RowBank

# The paper's absolute bandwidths. At K·D = 512 standardised dimensions squared distances are ≈ 1000,
# so these give kernel values ≈ 0 between distinct rows: kept for reproduction, not as a default.
PAPER_BANDWIDTHS: tp.Tuple[float, ...] = (0.1, 1.0, 5.0, 10.0, 20.0, 50.0)
# Multiples of K·D (with bandwidth_scale="dim"): after standardisation E‖u - v‖² ≈ 2·K·D, so
# a = c·K·D gives typical kernel values ≈ exp(-1/c), i.e. between 0.02 and 0.8 here.
DEFAULT_BANDWIDTHS: tp.Tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)

# The paper's "permutation" estimator is biased downwards by O(K/N) (about -7e-3 at N = 400,
# K·D = 512), enough for the clamp to zero the loss of clearly dependent streams; "permutation_debiased"
# leaves the shared-block pairs out and is centred on 0 under independence. The default, "hsic"
# (losses/hsic.py), computes the same MMD² exactly from the per-codebook Gram matrices: no permutation
# noise, mean exactly 0 under independence, O(N·block) memory, and faster (at the CPU training batch,
# N = 376: 61 ms forward + backward vs 138 ms for "permutation_debiased"; see docs/research/PERFORMANCE.md).
DEFAULT_ESTIMATOR = "hsic"

# Guards the variance in standardisation, so that constant (e.g. silent) features stay finite.
STANDARDIZE_EPS = 1e-5
# The median heuristic looks at this many rows at most (evenly spaced): O(rows²) distances.
MEDIAN_MAX_ROWS = 1024


# ---------------------------------------------------------------------------------------------------
# Bandwidth scales: fn(samples [N, K, D] after standardisation) -> multiplier of the bandwidths.
# A data-dependent scale returns a detached value: the bandwidth is not something to optimise.
# ---------------------------------------------------------------------------------------------------

def _dimension_scale(samples: torch.Tensor) -> float:
    return float(samples.shape[1] * samples.shape[2])


def _no_scale(samples: torch.Tensor) -> float:
    return 1.0


def _median_scale(samples: torch.Tensor) -> torch.Tensor:
    """Half the median squared distance between distinct rows (the median heuristic).

    With it, bandwidth multiple c gives kernel value exp(-1/c) at the median distance, as ``dim``
    does at the expected distance of standardised rows (``E‖u - v‖² ≈ 2·K·D``); unlike ``dim`` it
    follows the data when standardisation is off or the streams are far from Gaussian.
    """
    rows = samples.detach().flatten(1)
    if rows.shape[0] > MEDIAN_MAX_ROWS:
        rows = rows[torch.linspace(0, rows.shape[0] - 1, MEDIAN_MAX_ROWS, device=rows.device).long()]
    pairs = torch.triu_indices(rows.shape[0], rows.shape[0], offset=1, device=rows.device)
    distances = squared_distances(rows, rows)[pairs[0], pairs[1]]
    # Identical rows (e.g. silence) give 0: keep the bandwidth positive so the kernel stays finite.
    return (distances.median() / 2).clamp_min(STANDARDIZE_EPS)


BANDWIDTH_SCALES: tp.Dict[str, tp.Callable[[torch.Tensor], tp.Union[float, torch.Tensor]]] = {
    "dim": _dimension_scale,
    "median": _median_scale,
    "none": _no_scale,
}


# ---------------------------------------------------------------------------------------------------
# Products of marginals: which rows the product of the marginals is formed from.
# ---------------------------------------------------------------------------------------------------

# pooled (the paper's): from all N rows of the batch, so dependence through what each clip is
# (instruments, loudness; an LM reads it from its context) counts too. clip: from the T' rows of each
# clip only: E_clip MMD²(P_{Z|clip}, ⊗_k P_{Z_k|clip}), the dependence *given the clip*, estimated by
# the estimator on each clip's rows and averaged with row weights (all clips have T' rows). Exact and
# centred on 0 when the codebooks are independent within each clip, even if they share a clip-level
# cause; its kernels are per clip (T' x T'), so it costs less than the pooled estimate. chunk: the same
# on each run of ``chunk_frames`` consecutive aligned steps of a clip: the dependence given the local
# context, closer to what a parallel/delay LM pays for (it reads the recent past). Codes that the recent
# past determines are never penalised (within a chunk they are nearly constant, so joint = product);
# a clip's last T' mod chunk_frames rows are left out.
PRODUCTS = ("pooled", "clip", "chunk")
DEFAULT_CHUNK_FRAMES = 10


# ---------------------------------------------------------------------------------------------------
# Standardisation modes. Each acts at one of two points of the pipeline: on the streams before the
# alignment ([B, K, D, T]) and/or on the merged rows after it ([N, K, D]).
# ---------------------------------------------------------------------------------------------------

def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def standardize_features(samples: torch.Tensor, eps: float = STANDARDIZE_EPS) -> torch.Tensor:
    """Standardises each of the K·D features of ``samples`` ``[N, K, D]`` over the N rows.

    Statistics come from the same rows and are not detached, so the gradient flows through them.
    """
    var, mean = torch.var_mean(samples, dim=0, unbiased=False, keepdim=True)
    return (samples - mean) / torch.sqrt(var + eps)


def standardize_codebooks(streams: torch.Tensor, eps: float = STANDARDIZE_EPS) -> torch.Tensor:
    """Standardises each codebook of ``streams`` ``[B, K, D, T]`` with one scalar mean and variance
    over (B, D, T): the variant of the reference code tagged as the ICML version."""
    var, mean = torch.var_mean(streams, dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (streams - mean) / torch.sqrt(var + eps)


@dataclass(frozen=True)
class Standardization:
    """A standardisation mode, as the two points of the pipeline where it may act.

    Attributes:
        before_alignment: Applied to the streams ``[B, K, D, T]`` before the delay alignment.
        after_merge: Applied to the rows ``[N, K, D]`` after alignment and merging of batch and time.
    """
    before_alignment: tp.Callable[[torch.Tensor], torch.Tensor] = _identity
    after_merge: tp.Callable[[torch.Tensor], torch.Tensor] = _identity


STANDARDIZATIONS: tp.Dict[str, Standardization] = {
    "feature": Standardization(after_merge=standardize_features),
    "codebook": Standardization(before_alignment=standardize_codebooks),
    "none": Standardization(),
}


# ---------------------------------------------------------------------------------------------------
# Validation helpers: every message names the offending argument.
# ---------------------------------------------------------------------------------------------------

def _check_choice(value: str, choices: tp.Mapping[str, tp.Any], argument: str) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"Unknown {argument}={value!r}; available: {sorted(choices)}")


def _check_estimator(name: str) -> None:
    try:
        get_estimator(name)
    except ValueError as error:
        raise ValueError(f"estimator: {error}") from None


def _check_bandwidths(bandwidths: tp.Sequence[float]) -> tp.Tuple[float, ...]:
    if isinstance(bandwidths, (str, bytes)) or not isinstance(bandwidths, tp.Iterable):
        raise ValueError(f"bandwidths must be a sequence of positive floats, got {bandwidths!r}")
    try:
        values = tuple(float(a) for a in bandwidths)
    except (TypeError, ValueError):
        raise ValueError(f"bandwidths must be a sequence of positive floats, got {bandwidths!r}") from None
    if not values:
        raise ValueError("bandwidths must not be empty")
    if not all(math.isfinite(a) and a > 0 for a in values):
        raise ValueError(f"bandwidths must all be finite and > 0, got {list(values)}")
    return values


def _check_chunk_frames(chunk_frames: int) -> int:
    if isinstance(chunk_frames, bool) or int(chunk_frames) != chunk_frames or chunk_frames < 2:
        raise ValueError(f"chunk_frames must be an integer >= 2, got {chunk_frames!r}")
    return int(chunk_frames)


def _check_delays(delays: tp.Sequence[int]) -> tp.Tuple[int, ...]:
    if isinstance(delays, (str, bytes)) or not isinstance(delays, tp.Iterable):
        raise ValueError(f"delays must be a sequence of non-negative ints, got {delays!r}")
    values = []
    for delay in delays:
        if isinstance(delay, bool):
            raise ValueError(f"delays must be non-negative ints, got {delay!r} in {list(delays)}")
        try:
            value = operator.index(delay)  # ints (including numpy's), not floats
        except TypeError:
            raise ValueError(f"delays must be non-negative ints, got {delay!r} in {list(delays)}") from None
        if value < 0:
            raise ValueError(f"delays must be non-negative, got {value} in {list(delays)}")
        values.append(value)
    return tuple(values)


def _check_bank(bank, estimator: str, bandwidth_scale: str, absolute: torch.Tensor, product: str) -> None:
    if product != "pooled":
        raise ValueError(f"a row bank holds pooled kernel sums; product={product!r} cannot use one")
    if estimator != "hsic":
        raise ValueError(f"a row bank computes the 'hsic' estimate; estimator={estimator!r} cannot use one")
    if bandwidth_scale not in ("dim", "none"):
        raise ValueError(f"a row bank caches kernel sums, so it needs fixed bandwidths (bandwidth_scale 'dim' "
                         f"or 'none'), got bandwidth_scale={bandwidth_scale!r}")
    if bank.bandwidths is None:
        bank.bandwidths = tuple(absolute.tolist())
    elif not torch.allclose(torch.tensor(bank.bandwidths, dtype=torch.float64), absolute.double().cpu()):
        raise ValueError(f"the row bank holds sums for bandwidths {list(bank.bandwidths)}, not {absolute.tolist()}")


def _check_streams(streams: torch.Tensor) -> None:
    if not isinstance(streams, torch.Tensor):
        raise ValueError(f"streams must be a tensor [B, K, D, T], got {type(streams).__name__}")
    if streams.dim() != 4:
        raise ValueError(f"streams must be 4-D [B, K, D, T], got {streams.dim()}-D shape {tuple(streams.shape)}")
    if streams.shape[1] < 2:
        raise ValueError(f"streams must have K >= 2 codebooks (dim 1 of [B, K, D, T]), got shape "
                         f"{tuple(streams.shape)}")
    if not streams.is_floating_point():
        raise ValueError(f"streams must be floating point (vectors, not codes), got dtype {streams.dtype}")


# ---------------------------------------------------------------------------------------------------
# The loss
# ---------------------------------------------------------------------------------------------------

def align_streams(streams: torch.Tensor, delays: tp.Sequence[int]) -> torch.Tensor:
    """Aligns the codebook streams as MusicGen's delay pattern does.

    At LM step s, codebook k predicts frame ``s - delays[k]``; the aligned tuple at index t' is
    therefore ``(stream_k[t' + max(delays) - delays[k]])_k``. All-zero delays ("parallel") leave the
    streams unchanged.

    Args:
        streams: ``[B, K, D, T]`` per-codebook vectors.
        delays: K non-negative ints.

    Returns:
        ``[B, K, D, T']`` with ``T' = T - max(delays)``.

    Raises:
        ValueError: If ``delays`` does not hold K non-negative ints, or ``T <= max(delays)``.
    """
    delays = _check_delays(delays)
    if streams.dim() != 4:
        raise ValueError(f"streams must be 4-D [B, K, D, T], got shape {tuple(streams.shape)}")
    num_codebooks, num_frames = streams.shape[1], streams.shape[-1]
    if len(delays) != num_codebooks:
        raise ValueError(f"delays has {len(delays)} values but streams have K = {num_codebooks} codebooks")
    max_delay = max(delays)
    aligned_frames = num_frames - max_delay
    if aligned_frames < 1:
        raise ValueError(f"streams have T = {num_frames} frames, not more than max(delays) = {max_delay}: "
                         "nothing is left after the delay alignment")
    if max_delay == 0:
        return streams
    starts = [max_delay - delay for delay in delays]
    return torch.stack([streams[:, k, :, start:start + aligned_frames] for k, start in enumerate(starts)], dim=1)


@dataclass
class MMDIndependence:
    """Result of :func:`mmd_independence`.

    Attributes:
        loss: The scalar to minimise: the estimate clamped at 0 if clamping is on, else the estimate.
        estimate: The unclamped MMD² estimate (a scalar tensor carrying gradient), for logging and for
            evaluation; it may be negative: an unbiased estimator of a value near 0 fluctuates around it.
        num_rows: N = B·T', the number of rows (aligned frames over the batch) the estimate uses, plus
            those of the row bank when one is given.
        dim: K·D, the dimension of a row.
        clamped: True when the clamp is on and the estimate was negative (the loss, and its gradient,
            are then 0).
    """
    loss: torch.Tensor
    estimate: torch.Tensor
    num_rows: int
    dim: int
    clamped: bool


def mmd_independence(streams: torch.Tensor,
                     delays: tp.Optional[tp.Sequence[int]] = None,
                     bandwidths: tp.Sequence[float] = DEFAULT_BANDWIDTHS,
                     bandwidth_scale: str = "dim",
                     estimator: str = DEFAULT_ESTIMATOR,
                     standardize: str = "feature",
                     clamp: bool = True,
                     generator: tp.Optional[torch.Generator] = None,
                     feature_map: tp.Optional[tp.Callable[[torch.Tensor], torch.Tensor]] = None,
                     bank: tp.Optional["RowBank"] = None,
                     product: str = "pooled",
                     chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> MMDIndependence:
    """MMD² between the joint law of the K codebook vectors and the product of their marginals.

    Args:
        streams: ``[B, K, D, T]`` per-codebook vectors (K >= 2), floating point.
        delays: Per-codebook delays of the alignment (see :func:`align_streams`); None = all zeros.
        bandwidths: Positive kernel bandwidths, multiplied by ``K·D`` when ``bandwidth_scale="dim"``
            (:data:`DEFAULT_BANDWIDTHS`), by half the median squared distance between rows when
            ``"median"``, or absolute when ``"none"`` (e.g. :data:`PAPER_BANDWIDTHS`).
        bandwidth_scale: A key of :data:`BANDWIDTH_SCALES`.
        estimator: A name registered in :mod:`audiocraft_mmd.losses.mmd_estimators`.
        standardize: A key of :data:`STANDARDIZATIONS`: ``"feature"``, ``"codebook"`` or ``"none"``.
        clamp: Clamp the loss at 0, as the paper does.
        generator: Randomness of the estimator (row permutations, random features; the default
            ``"hsic"`` needs none); None uses torch's global RNG.
        feature_map: A learned kernel (e.g. :class:`~audiocraft_mmd.losses.adversary.IndependenceCritic`):
            maps the standardised rows ``[N, K, D]`` to per-codebook features ``[N, K, F]``, which are
            standardised per feature and take the rows' place; the Gaussian kernels then act on
            features (bandwidths scaled by ``K·F``). Per-codebook features keep the kernel a product
            of per-codebook kernels, so every estimator applies unchanged.
        bank: A :class:`~audiocraft_mmd.losses.bank.RowBank` of earlier batches' rows: the ``hsic``
            estimate is then on its rows plus these (gradient to these only), which then join it.
            Needs ``estimator="hsic"``, ``product="pooled"`` and a fixed bandwidth scale (``dim`` or ``none``).
        product: A key of :data:`PRODUCTS`: the product of marginals from all rows (``"pooled"``), from
            each clip's rows (``"clip"``; needs T' >= 2 aligned frames per clip), or from each chunk of
            ``chunk_frames`` consecutive aligned frames of a clip (``"chunk"``; needs T' >= chunk_frames).
        chunk_frames: Aligned frames per chunk with ``product="chunk"`` (>= 2).

    Returns:
        The :class:`MMDIndependence` result; ``result.loss`` is the value to minimise.

    Raises:
        ValueError: On a bad shape, bad delays, fewer than 2 rows after alignment, or an unknown or
            invalid option; the message names the argument.
    """
    _check_streams(streams)
    batch, num_codebooks, dim, num_frames = streams.shape
    delays = (0,) * num_codebooks if delays is None else _check_delays(delays)
    bandwidths = _check_bandwidths(bandwidths)
    _check_choice(bandwidth_scale, BANDWIDTH_SCALES, "bandwidth_scale")
    _check_choice(standardize, STANDARDIZATIONS, "standardize")
    _check_choice(product, dict.fromkeys(PRODUCTS), "product")
    chunk_frames = _check_chunk_frames(chunk_frames)
    _check_estimator(estimator)
    estimate_fn = get_estimator(estimator)
    mode = STANDARDIZATIONS[standardize]

    # Distances of about 2·K·D and exp() need float32: half inputs are upcast, autocast is off here.
    if streams.dtype in (torch.float16, torch.bfloat16):
        streams = streams.float()
    with torch.autocast(device_type=streams.device.type, enabled=False):
        streams = mode.before_alignment(streams)
        aligned = align_streams(streams, delays)
        clip_rows = aligned.shape[-1]
        num_rows = batch * clip_rows
        group_rows = {"pooled": num_rows, "clip": clip_rows, "chunk": chunk_frames}[product]  # rows per estimate
        if group_rows < 2 or (product == "chunk" and clip_rows < chunk_frames):
            needed = {"pooled": "at least 2", "clip": "2 per clip with product='clip'",
                      "chunk": f"chunk_frames={chunk_frames} per clip with product='chunk'"}[product]
            raise ValueError(f"streams give N = B·T' = {batch}·{clip_rows} = {num_rows} row(s) after the "
                             f"delay alignment (T = {num_frames}, max(delays) = {max(delays)}); {needed} are needed")
        # [B, K, D, T'] -> [B, T', K, D] -> [N, K, D]: a row is the K vectors of one aligned step.
        samples = aligned.permute(0, 3, 1, 2).reshape(num_rows, num_codebooks, dim)
        samples = mode.after_merge(samples)
        if feature_map is not None:
            samples = standardize_features(feature_map(samples))

        scale = BANDWIDTH_SCALES[bandwidth_scale](samples)
        absolute = torch.as_tensor(bandwidths, dtype=samples.dtype, device=samples.device) * scale
        if bank is not None:
            _check_bank(bank, estimator, bandwidth_scale, absolute, product)
            num_rows += len(bank)
            estimate = bank.estimate(samples)
            bank.push(samples)
        elif product != "pooled":  # rows are clip after clip: B clips of T' rows, cut in equal groups
            steps = clip_rows // group_rows * group_rows
            groups = samples.reshape(batch, clip_rows, *samples.shape[1:])[:, :steps].flatten(0, 1)
            num_rows = batch * steps  # a clip's last clip_rows mod group_rows rows are left out
            estimate = torch.stack([estimate_fn(group, absolute, generator)
                                    for group in groups.split(group_rows)]).mean()
        else:
            estimate = estimate_fn(samples, absolute, generator)

    clamped = bool(clamp) and bool(estimate.detach() < 0)
    loss = estimate.clamp_min(0) if clamp else estimate
    return MMDIndependence(loss=loss, estimate=estimate, num_rows=num_rows, dim=samples.shape[1] * samples.shape[2],
                           clamped=clamped)


class MMDIndependenceLoss(nn.Module):
    """The independence-promoting loss as a module; see :func:`mmd_independence` for the arguments.

    All options are validated at construction. ``forward`` returns the scalar loss and keeps the full
    :class:`MMDIndependence` result in ``self.last_result`` for logging.

    Example:
        >>> loss_fn = MMDIndependenceLoss(delays=[0, 1, 2, 3])
        >>> loss = loss_fn(streams)  # streams: [B, 4, D, T]
        >>> loss_fn.last_result.estimate  # unclamped value
    """

    def __init__(self,
                 delays: tp.Optional[tp.Sequence[int]] = None,
                 bandwidths: tp.Sequence[float] = DEFAULT_BANDWIDTHS,
                 bandwidth_scale: str = "dim",
                 estimator: str = DEFAULT_ESTIMATOR,
                 standardize: str = "feature",
                 clamp: bool = True,
                 feature_map: tp.Optional[nn.Module] = None,
                 product: str = "pooled",
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES):
        super().__init__()
        self.delays: tp.Optional[tp.Tuple[int, ...]] = None if delays is None else _check_delays(delays)
        self.bandwidths = _check_bandwidths(bandwidths)
        _check_choice(bandwidth_scale, BANDWIDTH_SCALES, "bandwidth_scale")
        _check_choice(standardize, STANDARDIZATIONS, "standardize")
        _check_estimator(estimator)
        _check_choice(product, dict.fromkeys(PRODUCTS), "product")
        self.product = product
        self.chunk_frames = _check_chunk_frames(chunk_frames)
        self.bandwidth_scale = bandwidth_scale
        self.estimator = estimator
        self.standardize = standardize
        self.clamp = bool(clamp)
        self.feature_map = feature_map
        self.last_result: tp.Optional[MMDIndependence] = None

    def options(self) -> tp.Dict[str, tp.Any]:
        """Keyword arguments of :func:`mmd_independence` this loss computes with, except ``clamp``."""
        return dict(delays=self.delays, bandwidths=self.bandwidths, bandwidth_scale=self.bandwidth_scale,
                    estimator=self.estimator, standardize=self.standardize, feature_map=self.feature_map,
                    product=self.product, chunk_frames=self.chunk_frames)

    def forward(self, streams: torch.Tensor, generator: tp.Optional[torch.Generator] = None,
                bank: tp.Optional["RowBank"] = None) -> torch.Tensor:
        """Computes the loss on ``streams`` ``[B, K, D, T]``.

        Args:
            streams: Per-codebook vectors; K must match the ``delays`` given at construction.
            generator: Randomness of the estimator; None uses torch's global RNG.
            bank: Earlier batches' rows, see :func:`mmd_independence`.

        Returns:
            The scalar loss (``self.last_result.loss``).
        """
        _check_streams(streams)
        if self.delays is not None and len(self.delays) != streams.shape[1]:
            raise ValueError(f"delays given at construction have {len(self.delays)} values but streams have "
                             f"K = {streams.shape[1]} codebooks (shape {tuple(streams.shape)})")
        self.last_result = mmd_independence(streams, clamp=self.clamp, generator=generator, bank=bank,
                                            **self.options())
        return self.last_result.loss

    def first_codebooks(self, num_codebooks: int) -> "MMDIndependenceLoss":
        """The same loss on the first ``num_codebooks`` codebooks (their delays, the rest dropped).

        A residual quantizer running fewer stages than it has (AudioCraft's quantizer dropout, a
        lower bandwidth) drops its last ones, so its active codebooks are the first K.
        """
        if self.delays is None or num_codebooks == len(self.delays):
            return self
        if not 1 <= num_codebooks <= len(self.delays):
            raise ValueError(f"{num_codebooks} active codebooks, but the loss was built for {len(self.delays)}")
        options = {**self.options(), "delays": self.delays[:num_codebooks]}
        return MMDIndependenceLoss(clamp=self.clamp, **options)

    def extra_repr(self) -> str:
        return (f"delays={self.delays}, bandwidths={self.bandwidths}, bandwidth_scale={self.bandwidth_scale!r}, "
                f"estimator={self.estimator!r}, standardize={self.standardize!r}, clamp={self.clamp}, "
                f"product={self.product!r}"
                + (f", chunk_frames={self.chunk_frames}" if self.product == "chunk" else ""))
