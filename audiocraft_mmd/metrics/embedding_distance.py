"""Distances between two sets of embeddings: Fréchet distance and kernel distance (KID), with
bootstrap confidence intervals.

- **Fréchet distance** (the FAD/FID formula): ``‖μ_x − μ_y‖² + Tr(Σ_x + Σ_y − 2 (Σ_x Σ_y)^½)`` between
  Gaussians fitted to each set. Biased upwards at small sample counts (the bias shrinks as 1/n).
- **Kernel distance** (KID, Bińkowski et al. 2018): the unbiased MMD² estimate with the cubic
  polynomial kernel ``k(a, b) = (aᵀb / d + 1)³``. Its mean is exactly 0 when both sets come from
  the same law, at any sample count, so small sets compare fairly; it can be slightly negative.

The confidence intervals resample *groups* (e.g. tracks: patches of one track are correlated, so
resampling patches would give intervals that are too narrow) with replacement in each set, and
report percentiles of the recomputed statistic. In the kernel distance, pairs of a resampled
embedding with its own copy are left out, as the diagonal is in the unbiased estimate.
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
        ci_low, ci_high: Percentile interval over the bootstrap draws (``level`` coverage).
        level: Coverage of the interval (e.g. 0.95); 0 when no bootstrap was run.
        draws: Number of bootstrap draws.
    """
    value: float
    ci_low: float
    ci_high: float
    level: float
    draws: int

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
                   ix: tp.Optional[torch.Tensor] = None, iy: tp.Optional[torch.Tensor] = None) -> torch.Tensor:
    """Unbiased MMD² from Gram matrices, optionally of resampled rows ``ix``/``iy`` of the originals:
    within-set pairs of the same original row (the diagonal, and copies) are left out."""
    def within(gram: torch.Tensor, index: tp.Optional[torch.Tensor]) -> torch.Tensor:
        if index is None:
            n = gram.shape[0]
            return (gram.sum() - gram.diagonal().sum()) / (n * (n - 1))
        sub = gram[index][:, index]
        keep = index[:, None] != index[None, :]
        return (sub * keep).sum() / keep.sum().clamp_min(1)

    cross = k_xy if ix is None else k_xy[ix][:, iy]
    return within(k_xx, ix) + within(k_yy, iy) - 2 * cross.mean()


def kernel_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD² with the cubic polynomial kernel (KID) between ``x`` [n, d] and ``y`` [m, d]."""
    _check_sets(x, y, 2)
    x, y = x.double(), y.double()
    return float(_mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)))


def _group_index(groups: tp.Optional[tp.Sequence[tp.Hashable]], n: int) -> tp.List[torch.Tensor]:
    """Row indices of each group (each row its own group by default)."""
    if groups is None:
        return [torch.tensor([i]) for i in range(n)]
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group labels for {n} embeddings")
    members: tp.Dict[tp.Hashable, tp.List[int]] = {}
    for row, group in enumerate(groups):
        members.setdefault(group, []).append(row)
    return [torch.tensor(rows) for rows in members.values()]


def _resample(groups: tp.List[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    picks = torch.randint(len(groups), (len(groups),), generator=generator)
    return torch.cat([groups[i] for i in picks.tolist()])


def embedding_distances(x: torch.Tensor, y: torch.Tensor, groups_x: tp.Optional[tp.Sequence[tp.Hashable]] = None,
                        groups_y: tp.Optional[tp.Sequence[tp.Hashable]] = None, draws: int = 200,
                        level: float = 0.95, seed: int = 0) -> tp.Dict[str, Distance]:
    """Fréchet and kernel distances between two embedding sets, with group-bootstrap intervals.

    Args:
        x, y: ``[n, d]`` and ``[m, d]`` embeddings (e.g. one per 3 s patch).
        groups_x, groups_y: A label per row (e.g. its track); the bootstrap resamples whole groups.
            Default: every row is its own group.
        draws: Bootstrap draws (0: no interval, ``ci_low = ci_high = value``).
        level: Coverage of the percentile interval.
        seed: Seed of the resampling.

    Returns:
        ``{"frechet": Distance, "kernel": Distance}``.

    Raises:
        ValueError: On mismatched dimensions, fewer than 2 rows per set or non-finite values.
    """
    _check_sets(x, y, 2)
    x, y = x.double(), y.double()
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    values = {"frechet": frechet_distance(x, y), "kernel": float(_mmd2_unbiased(k_xx, k_yy, k_xy))}
    if draws <= 0:
        return {name: Distance(value, value, value, 0.0, 0) for name, value in values.items()}
    generator = torch.Generator().manual_seed(seed)
    index_x, index_y = _group_index(groups_x, x.shape[0]), _group_index(groups_y, y.shape[0])
    samples: tp.Dict[str, tp.List[float]] = {"frechet": [], "kernel": []}
    for _ in range(draws):
        ix, iy = _resample(index_x, generator), _resample(index_y, generator)
        if len(set(ix.tolist())) < 2 or len(set(iy.tolist())) < 2:
            continue  # a draw of one distinct row has no covariance nor within-set pair
        samples["frechet"].append(frechet_distance(x[ix], y[iy]))
        samples["kernel"].append(float(_mmd2_unbiased(k_xx, k_yy, k_xy, ix, iy)))
    tail = (1 - level) / 2
    result = {}
    for name, value in values.items():
        drawn = torch.tensor(samples[name], dtype=torch.float64)
        if drawn.numel() == 0:
            result[name] = Distance(value, value, value, 0.0, 0)
            continue
        low, high = torch.quantile(drawn, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
        result[name] = Distance(value, low, high, level, int(drawn.numel()))
    return result
