"""Distances between two sets of embeddings: Fréchet distance and kernel distance (KID), with
bootstrap confidence intervals.

- **Fréchet distance** (the FAD/FID formula): ``‖μ_x − μ_y‖² + Tr(Σ_x + Σ_y − 2 (Σ_x Σ_y)^½)`` between
  Gaussians fitted to each set. Biased upwards at small sample counts (the bias shrinks as 1/n).
- **Kernel distance** (KID, Bińkowski et al. 2018): the unbiased MMD² estimate with the cubic
  polynomial kernel ``k(a, b) = (aᵀb / d + 1)³``. Its mean is exactly 0 when both sets come from
  the same law, at any sample count, so small sets compare fairly; it can be slightly negative.

**Groups.** Embeddings often come in correlated groups (the 3 s patches of one track). With
groups given, the kernel distance's within-set averages run over pairs from *different* groups
only, as its cross-set average does: patches of one track resemble each other more than patches
of two tracks, and counting those pairs would read two halves of one collection as different
(mean above 0). The estimate stays unbiased for sets of independently drawn groups. For *paired*
sets (references and their reconstructions), cross pairs of one unit are left out as well.

**Intervals.** The bootstrap resamples whole groups with replacement in each set (resampling
correlated patches would give intervals too narrow) and recomputes both distances; the interval is
``value ± z·SD`` of the draws (normal bootstrap interval; the Fréchet distance's lower bound is
clipped at 0, its minimum). Percentiles are not used: a duplicated
group shrinks the resampled covariance, so the Fréchet draws are biased upwards and their
percentile interval can miss the estimate itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import typing as tp

import torch


@dataclass
class Distance:
    """A distance and its bootstrap interval.

    Attributes:
        value: Estimate on the full sets.
        ci_low, ci_high: ``value ± z·SD`` of the bootstrap draws (``level`` coverage).
        level: Coverage of the interval (e.g. 0.95); 0 when no bootstrap was run.
        draws: Number of bootstrap draws.
        rows_x, rows_y: Embeddings used per set (fewer than given when capped by ``max_rows``).
    """
    value: float
    ci_low: float
    ci_high: float
    level: float
    draws: int
    rows_x: int = 0
    rows_y: int = 0

    def to_dict(self) -> tp.Dict[str, float]:
        return asdict(self)


def _check_sets(x: torch.Tensor, y: torch.Tensor, minimum: int) -> None:
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected two [n, d] embedding sets of the same d, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[0], y.shape[0]) < minimum:
        raise ValueError(f"need at least {minimum} embeddings per set, got {x.shape[0]} and {y.shape[0]}")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("embeddings contain NaN or infinite values")


def _trace_sqrt_product(sigma_x: torch.Tensor, sigma_y: torch.Tensor) -> torch.Tensor:
    """Tr((Σ_x Σ_y)^½) as Σ √λ of the symmetric PSD matrix Σ_x^½ Σ_y Σ_x^½ (same eigenvalues)."""
    values, vectors = torch.linalg.eigh(sigma_x)
    root = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    middle = root @ sigma_y @ root
    return torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()


def _gaussian(x: torch.Tensor) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / (x.shape[0] - 1)


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to ``x`` [n, d] and ``y`` [m, d] (float64)."""
    _check_sets(x, y, 2)
    (mu_x, sigma_x), (mu_y, sigma_y) = _gaussian(x.double()), _gaussian(y.double())
    value = (mu_x - mu_y).square().sum() + sigma_x.trace() + sigma_y.trace() \
        - 2 * _trace_sqrt_product(sigma_x, sigma_y)
    return float(value)


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(aᵀb / d + 1)³`` for every pair of rows, ``[n, m]``."""
    return (a @ b.T / a.shape[1] + 1) ** 3


def _mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor,
                   gx: tp.Optional[torch.Tensor] = None, gy: tp.Optional[torch.Tensor] = None,
                   ix: tp.Optional[torch.Tensor] = None, iy: tp.Optional[torch.Tensor] = None,
                   paired: bool = False) -> torch.Tensor:
    """Unbiased MMD² from Gram matrices.

    ``gx``/``gy``: group label per row; within-set pairs of one group are left out (default: each
    row its own group, i.e. the diagonal). ``ix``/``iy``: resampled rows of the originals.
    ``paired``: the labels name the same units in both sets; cross pairs of one unit are left out too.
    """
    def within(gram: torch.Tensor, groups: tp.Optional[torch.Tensor], index: tp.Optional[torch.Tensor]) -> torch.Tensor:
        rows = torch.arange(gram.shape[0]) if index is None else index
        labels = rows if groups is None else groups[rows]
        sub = gram if index is None else gram[index][:, index]
        keep = labels[:, None] != labels[None, :]
        pairs = keep.sum()
        if pairs == 0:
            raise ValueError("the kernel distance needs at least 2 groups per set")
        return (sub * keep).sum() / pairs

    cross = k_xy if ix is None else k_xy[ix][:, iy]
    if not paired:
        return within(k_xx, gx, ix) + within(k_yy, gy, iy) - 2 * cross.mean()
    if gx is None or gy is None:
        raise ValueError("paired sets need their group labels (gx, gy): they name the units of both sets")
    rows_x = torch.arange(k_xx.shape[0]) if ix is None else ix
    rows_y = torch.arange(k_yy.shape[0]) if iy is None else iy
    keep = gx[rows_x][:, None] != gy[rows_y][None, :]
    return within(k_xx, gx, ix) + within(k_yy, gy, iy) - 2 * (cross * keep).sum() / keep.sum()


def kernel_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD² with the cubic polynomial kernel (KID) between ``x`` [n, d] and ``y`` [m, d]."""
    _check_sets(x, y, 2)
    x, y = x.double(), y.double()
    return float(_mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)))


def _group_labels(groups: tp.Optional[tp.Sequence[tp.Hashable]], n: int,
                  codes: tp.Optional[tp.Dict[tp.Hashable, int]] = None) -> torch.Tensor:
    """An integer label per row (each row its own group by default); ``codes`` shares label numbers."""
    if groups is None:
        groups = range(n)
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group labels for {n} embeddings")
    codes = {} if codes is None else codes
    return torch.tensor([codes.setdefault(group, len(codes)) for group in groups])


def _members(labels: torch.Tensor, count: int) -> tp.List[torch.Tensor]:
    return [torch.nonzero(labels == g).flatten() for g in range(count)]


def _resample(members: tp.List[torch.Tensor], picks: torch.Tensor) -> torch.Tensor:
    """Rows of the picked groups (a group absent from this set contributes nothing)."""
    return torch.cat([members[i] for i in picks.tolist()])


def embedding_distances(x: torch.Tensor, y: torch.Tensor, groups_x: tp.Optional[tp.Sequence[tp.Hashable]] = None,
                        groups_y: tp.Optional[tp.Sequence[tp.Hashable]] = None, draws: int = 200,
                        level: float = 0.95, seed: int = 0, paired: bool = False,
                        max_rows: int = 4000) -> tp.Dict[str, Distance]:
    """Fréchet and kernel distances between two embedding sets, with group-bootstrap intervals.

    Args:
        x, y: ``[n, d]`` and ``[m, d]`` embeddings (e.g. one per 3 s patch).
        groups_x, groups_y: A label per row (e.g. its track); the bootstrap resamples whole groups.
            Default: every row is its own group.
        draws: Bootstrap draws (0: no interval, ``ci_low = ci_high = value``).
        level: Coverage of the normal interval.
        seed: Seed of the resampling.
        paired: The two sets hold the same units (e.g. references and their reconstructions, with
            the same group labels): the kernel distance also leaves out cross pairs of one unit,
            so that a perfect reconstruction reads exactly 0, and the bootstrap draws the same
            units on both sides.
        max_rows: A set of more rows is subsampled to this many (seeded, uniformly) before both
            distances: the kernel distance holds three Gram matrices of 8·n² bytes.

    Returns:
        ``{"frechet": Distance, "kernel": Distance}``.

    Raises:
        ValueError: On mismatched dimensions, fewer than 2 rows (or groups) per set or non-finite values.
    """
    _check_sets(x, y, 2)
    x, y = x.double(), y.double()
    codes: tp.Dict[tp.Hashable, int] = {}
    gx = _group_labels(groups_x, x.shape[0], codes)
    gy = _group_labels(groups_y, y.shape[0], codes if paired else None)
    if paired and set(gx.tolist()) != set(gy.tolist()):
        raise ValueError("paired sets must carry the same group labels")
    generator = torch.Generator().manual_seed(seed)
    if max(x.shape[0], y.shape[0]) > max_rows:
        if paired and x.shape[0] != y.shape[0]:
            raise ValueError("paired sets above max_rows must have as many rows each")
        keep_x = torch.randperm(x.shape[0], generator=generator)[:max_rows].sort().values
        keep_y = keep_x if paired else torch.randperm(y.shape[0], generator=generator)[:max_rows].sort().values
        x, gx, y, gy = x[keep_x], gx[keep_x], y[keep_y], gy[keep_y]
        # Relabel 0..G-1 (a group may have lost every row); shared numbering when paired.
        shared: tp.Dict[tp.Hashable, int] = {}
        gx = _group_labels(gx.tolist(), x.shape[0], shared)
        gy = _group_labels(gy.tolist(), y.shape[0], shared if paired else None)
    rows = {"rows_x": int(x.shape[0]), "rows_y": int(y.shape[0])}
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    values = {"frechet": frechet_distance(x, y),
              "kernel": float(_mmd2_unbiased(k_xx, k_yy, k_xy, gx, gy, paired=paired))}
    if draws <= 0:
        return {name: Distance(value, value, value, 0.0, 0, **rows) for name, value in values.items()}
    samples: tp.Dict[str, tp.List[float]] = {"frechet": [], "kernel": []}
    count_x, count_y = int(gx.max()) + 1, int(gy.max()) + 1
    members_x, members_y = _members(gx, count_x), _members(gy, count_y)
    for _ in range(draws):
        picks_x = torch.randint(count_x, (count_x,), generator=generator)
        picks_y = picks_x if paired else torch.randint(count_y, (count_y,), generator=generator)
        ix, iy = _resample(members_x, picks_x), _resample(members_y, picks_y)
        if len(set(gx[ix].tolist())) < 2 or len(set(gy[iy].tolist())) < 2:
            continue  # one distinct group: no pair from two groups
        samples["frechet"].append(frechet_distance(x[ix], y[iy]))
        samples["kernel"].append(float(_mmd2_unbiased(k_xx, k_yy, k_xy, gx, gy, ix, iy, paired)))
    z = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + level / 2)))
    result = {}
    for name, value in values.items():
        drawn = torch.tensor(samples[name], dtype=torch.float64)
        if drawn.numel() < 2:
            result[name] = Distance(value, value, value, 0.0, 0, **rows)
            continue
        spread = z * float(drawn.std())
        low = value - spread if name == "kernel" else max(0.0, value - spread)  # a Fréchet distance is >= 0
        result[name] = Distance(value, low, value + spread, level, int(drawn.numel()), **rows)
    return result
