"""Entropy estimators on histogram counts, and joint counts of code pairs and tuples.

Only the multiset of occupied cells' counts is ever built (by ``bincount`` when the number of cells
is at most a few times the number of frames, else by sorting the cell ids), so memory follows the
number of frames, never ``bins ** 2``. Pure torch and numpy.

Estimators (bits), all from the counts ``n_c > 0`` of the occupied cells, ``N = Σ n_c``:

- ``plugin``: ``-Σ (n_c / N) log2(n_c / N)``; biased low by about ``(m - 1) / (2 N ln 2)`` with m
  occupied cells when well sampled, and saturated near ``log2 N`` when most cells are seen once.
- ``miller_madow``: plug-in plus ``(m - 1) / (2 N ln 2)``.
- ``grassberger``: Grassberger (2003), ``log N - (1/N) Σ n_c G(n_c)`` with
  ``G(n) = ψ(n) + ½ (-1)^n (ψ((n + 1) / 2) - ψ(n / 2))``; the smallest bias of the three when the
  histogram is sparse (measured in tests/test_dependence.py).
"""

from __future__ import annotations

import math
import typing as tp

import numpy as np
import torch

from ..registry import Registry

LN2 = math.log(2.0)

# fn(counts: 1-D tensor of positive counts) -> entropy in bits (0-D float64 tensor).
ENTROPY_ESTIMATORS = Registry("entropy estimator")
register_entropy_estimator = ENTROPY_ESTIMATORS.register


def count_frequencies(counts: torch.Tensor) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    """Distinct count values n and how many cells have each (f_n): every estimator here is a sum
    over cells of a function of n_c, so it is evaluated once per distinct n (far fewer than cells)."""
    frequencies = torch.bincount(counts.reshape(-1).long())
    values = torch.nonzero(frequencies).squeeze(1)
    return values.double(), frequencies[values].double()


@register_entropy_estimator("plugin")
def plugin_entropy(counts: torch.Tensor) -> torch.Tensor:
    n, f = count_frequencies(counts)
    total = (n * f).sum()
    return -(f * (n / total) * torch.log2(n / total)).sum()


@register_entropy_estimator("miller_madow")
def miller_madow_entropy(counts: torch.Tensor) -> torch.Tensor:
    return plugin_entropy(counts) + (counts.numel() - 1) / (2 * float(counts.sum()) * LN2)


@register_entropy_estimator("grassberger")
def grassberger_entropy(counts: torch.Tensor) -> torch.Tensor:
    n, f = count_frequencies(counts)
    total = float((n * f).sum())
    sign = 1.0 - 2.0 * torch.remainder(n, 2)  # (-1)^n
    digamma = torch.special.digamma
    g = digamma(n) + 0.5 * sign * (digamma((n + 1) / 2) - digamma(n / 2))
    return (math.log(total) - (f * n * g).sum() / total) / LN2


def occupied_counts(ids: torch.Tensor, num_cells: tp.Optional[int] = None) -> torch.Tensor:
    """Counts of the occupied cells among integer cell ids ``[N]`` (order unspecified).

    Args:
        ids: Cell of each frame, in ``[0, num_cells)``.
        num_cells: Number of possible cells, if known; a dense ``bincount`` is used when it is at
            most 4 N (memory bounded by the data), else a sort (``torch.unique``).
    """
    ids = ids.reshape(-1)
    if num_cells is not None and num_cells <= 4 * ids.numel():
        counts = torch.bincount(ids, minlength=num_cells)
        return counts[counts > 0]
    # numpy's sort-based unique is about 10x faster than torch.unique on CPU (measured, 1 M ids).
    return torch.from_numpy(np.unique(ids.cpu().numpy(), return_counts=True)[1])


def pair_ids(x: torch.Tensor, y: torch.Tensor, bins: int) -> torch.Tensor:
    """Cell id ``x * bins + y`` of each frame of two code streams ``[N]`` with values in ``[0, bins)``."""
    return x.long() * bins + y.long()


def tuple_ids(codes: torch.Tensor, bins: int) -> torch.Tensor:
    """Dense ids of the K-tuples of ``codes`` ``[K, N]``, re-indexed after each codebook so that
    ``bins ** K`` never has to fit in an int64."""
    ids = codes[0].long().cpu().numpy()
    for row in codes[1:]:
        ids = np.unique(ids * bins + row.long().cpu().numpy(), return_inverse=True)[1].reshape(-1)
    return torch.from_numpy(ids)


def coverage(counts: torch.Tensor) -> float:
    """Good–Turing sample coverage ``1 - f1 / N``: the probability mass of the cells already seen.

    Near 1, the histogram has seen almost all of the law; near 0, most frames fall in cells seen
    once, and no entropy estimate of it can be trusted.
    """
    total = float(counts.sum())
    return 1.0 - float((counts == 1).sum()) / total if total else 0.0
