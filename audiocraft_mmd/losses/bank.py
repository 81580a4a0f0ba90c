"""The exact ``hsic`` estimate on a bank of recent batches plus the current one, at O(n·N) cost per step.

The MMD needs thousands of rows; one step's batch gives hundreds. The paper re-encodes the last M
batches every M steps (:mod:`audiocraft_mmd.solvers.macro_batch`), which costs a second encoder
pass over every batch. A bank keeps instead the rows of the last M - 1 batches, detached, and each
step computes the estimate of :func:`audiocraft_mmd.losses.hsic.hsic_mmd` on those rows plus the
current batch's, with gradient to the current rows only (the bank's rows are constants, computed by
slightly older encoders: the memory bank of contrastive learning, MoCo-style).

The estimate needs, for every row, its per-codebook kernel sums over all other rows (``s_i^k``),
and the sum of the joint kernel over all pairs. The bank keeps these sums among its own rows up to
date as batches enter and leave (each costs kernels between that batch's rows and the bank's), so a
step computes kernels between the current rows and all rows only: O(n·N·K·(D + A)) for n current
rows and N in total, instead of O(N²·K·(D + A)). Sums are kept in float64 and recomputed from
scratch once per bank cycle, so rounding does not drift.

Rows enter the bank as given: standardise each batch's rows before (the loss does it per batch),
and use fixed bandwidths (a data-dependent scale would change the cached sums).
"""

from __future__ import annotations

import collections
import typing as tp

import torch

from .hsic import codebook_distances, kernel_exponent_floor

ACCUMULATE = torch.float64


def _distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-codebook squared distances ``[K, n, m]`` between rows ``x [n, K, D]`` and ``y [m, K, D]``."""
    return codebook_distances(x.transpose(0, 1), y.transpose(0, 1))


def _kernels(dists: torch.Tensor, bandwidth: float) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    """Per-codebook kernels ``[K, n, m]`` and the joint kernel ``[n, m]`` from per-codebook distances,
    kept above the subnormal range as in :mod:`.hsic`."""
    floor = kernel_exponent_floor(dists.dtype)
    factor = -0.5 / bandwidth
    return (dists * factor).clamp_min(floor).exp(), (dists.sum(0) * factor).clamp_min(floor).exp()


def _zero_diagonal(kernels: torch.Tensor, joint: torch.Tensor) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    eye = torch.eye(joint.shape[0], dtype=torch.bool, device=joint.device)
    return kernels.masked_fill(eye, 0), joint.masked_fill(eye, 0)


class RowBank:
    """The rows of the last ``capacity`` batches and their kernel sums, for :meth:`estimate`.

    Args:
        capacity: Batches kept (M - 1 for a loss on M batches' rows).
        bandwidths: The A absolute bandwidths of ``Σ_a exp(-‖u - v‖² / (2a))``; None: set by the
            first call of :func:`audiocraft_mmd.losses.mmd.mmd_independence` that uses the bank.
    """

    def __init__(self, capacity: int, bandwidths: tp.Optional[tp.Sequence[float]] = None):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self.capacity = capacity
        self.bandwidths = None if bandwidths is None else tuple(float(a) for a in bandwidths)
        self.batches: tp.Deque[torch.Tensor] = collections.deque()
        self.row_sums: tp.Optional[torch.Tensor] = None   # [A, K, N_b] Σ_{j in bank, j≠i} K^k_ij
        self.joint_sum: tp.Optional[torch.Tensor] = None  # [A] Σ_{i≠j in bank} Π_k K^k_ij
        self.pushes = 0

    @property
    def rows(self) -> torch.Tensor:
        return torch.cat(list(self.batches))

    def __len__(self) -> int:
        return sum(batch.shape[0] for batch in self.batches)

    def _bandwidth_values(self) -> tp.Tuple[float, ...]:
        if self.bandwidths is None:
            raise ValueError("the row bank's bandwidths are unset (mmd_independence sets them on its first use)")
        return self.bandwidths

    def _sums(self) -> tp.Tuple[torch.Tensor, torch.Tensor]:
        """``(row_sums, joint_sum)``, set whenever the bank holds rows."""
        if self.row_sums is None or self.joint_sum is None:
            raise RuntimeError("the row bank holds rows but no kernel sums")
        return self.row_sums, self.joint_sum

    def estimate(self, current: torch.Tensor) -> torch.Tensor:
        """``hsic_mmd`` on the bank's rows followed by ``current`` ``[n, K, D]``, differentiable w.r.t. ``current``.

        With an empty bank it is the estimate on ``current`` alone.
        """
        n = current.shape[0]
        self._to(current.device)
        bank = self.rows.to(current.dtype) if self.batches else current.new_zeros((0, *current.shape[1:]))
        total = bank.shape[0] + n
        if total < 2:
            raise ValueError(f"the estimate needs at least 2 rows, got {total}")
        pairs = total * (total - 1)
        estimate = current.new_zeros((), dtype=ACCUMULATE)
        d_cc, d_cb = _distances(current, current), _distances(current, bank)
        row_sums, joint_sum = self._sums() if self.batches else (None, None)
        for a, bandwidth in enumerate(self._bandwidth_values()):
            k_cc, j_cc = _zero_diagonal(*_kernels(d_cc, bandwidth))
            k_cb, j_cb = _kernels(d_cb, bandwidth)
            bank_sums = row_sums[a].to(k_cb.dtype) if row_sums is not None else k_cb.new_zeros((k_cb.shape[0], 0))
            joint = ((joint_sum[a] if joint_sum is not None else 0)
                     + 2 * j_cb.sum(dtype=ACCUMULATE) + j_cc.sum(dtype=ACCUMULATE))
            sums_current = k_cc.sum(-1) + k_cb.sum(-1)            # [K, n]
            sums_bank = bank_sums + k_cb.sum(1)                  # [K, N_b]
            cross = ((sums_current / (total - 1)).prod(0).sum(dtype=ACCUMULATE)
                     + (sums_bank / (total - 1)).prod(0).sum(dtype=ACCUMULATE)) / total
            product = ((sums_current.sum(-1, dtype=ACCUMULATE) + sums_bank.sum(-1, dtype=ACCUMULATE)) / pairs).prod()
            estimate = estimate + joint / pairs - 2 * cross + product
        return estimate.to(current.dtype)

    @torch.no_grad()
    def push(self, rows: torch.Tensor) -> None:
        """Adds a batch's rows ``[n, K, D]`` (detached) and drops the oldest batch beyond ``capacity``."""
        rows = rows.detach()
        if self.batches and rows.shape[1:] != self.batches[0].shape[1:]:
            raise ValueError(f"rows of shape {tuple(rows.shape[1:])} cannot join a bank of "
                             f"{tuple(self.batches[0].shape[1:])}")
        self._to(rows.device)
        if len(self.batches) == self.capacity:
            self._remove_oldest()
        self._add(rows)
        self.pushes += 1
        if self.pushes % self.capacity == 0:
            self._recompute()  # once per cycle, so that rounding in the updates cannot drift

    def _to(self, device: torch.device) -> None:
        """Moves the rows and sums to ``device`` (a checkpoint holds them on the CPU)."""
        if self.batches and self.batches[0].device != device:
            self.batches = collections.deque(batch.to(device) for batch in self.batches)
            row_sums, joint_sum = self._sums()
            self.row_sums, self.joint_sum = row_sums.to(device), joint_sum.to(device)

    def _per_bandwidth(self, update: tp.Callable[[int, float], tp.Tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Replaces the cached sums by ``update(a, bandwidth) -> (row_sums [K, N_b], joint_sum)`` for every a."""
        row_sums, joint_sum = zip(*(update(a, bandwidth) for a, bandwidth in enumerate(self._bandwidth_values())))
        self.row_sums, self.joint_sum = torch.stack(row_sums), torch.stack(joint_sum)

    def _add(self, rows: torch.Tensor) -> None:
        old = self.rows if self.batches else rows[:0]
        row_sums, joint_sum = self._sums() if old.shape[0] else (None, None)
        self.batches.append(rows)
        d_nn, d_no = _distances(rows, rows), _distances(rows, old)

        def update(a: int, bandwidth: float):
            k_nn, j_nn = _zero_diagonal(*_kernels(d_nn, bandwidth))
            k_no, j_no = _kernels(d_no, bandwidth)
            previous = (row_sums[a] if row_sums is not None
                        else k_no.new_zeros((k_no.shape[0], 0), dtype=ACCUMULATE))
            joint = joint_sum[a] if joint_sum is not None else torch.zeros((), dtype=ACCUMULATE)
            return (torch.cat([previous + k_no.sum(1, dtype=ACCUMULATE),
                               (k_nn.sum(-1) + k_no.sum(-1)).to(ACCUMULATE)], dim=-1),
                    joint + 2 * j_no.sum(dtype=ACCUMULATE) + j_nn.sum(dtype=ACCUMULATE))
        self._per_bandwidth(update)

    def _remove_oldest(self) -> None:
        oldest = self.batches.popleft()
        if not self.batches:
            self.row_sums = self.joint_sum = None
            return
        rest = self.rows
        size = oldest.shape[0]
        d_oo, d_or = _distances(oldest, oldest), _distances(oldest, rest)
        row_sums, joint_sum = self._sums()

        def update(a: int, bandwidth: float):
            k_oo, j_oo = _zero_diagonal(*_kernels(d_oo, bandwidth))
            k_or, j_or = _kernels(d_or, bandwidth)
            return (row_sums[a][:, size:] - k_or.sum(1, dtype=ACCUMULATE),
                    joint_sum[a] - 2 * j_or.sum(dtype=ACCUMULATE) - j_oo.sum(dtype=ACCUMULATE))
        self._per_bandwidth(update)

    def _recompute(self, block_size: int = 512) -> None:
        rows = self.rows

        def update(a: int, bandwidth: float):
            row_sums, joint = [], torch.zeros((), dtype=ACCUMULATE)
            for start in range(0, rows.shape[0], block_size):
                kernels, joint_block = _kernels(_distances(rows[start:start + block_size], rows), bandwidth)
                kernels.diagonal(offset=start, dim1=1, dim2=2).zero_()
                joint_block.diagonal(offset=start).zero_()
                row_sums.append(kernels.sum(-1, dtype=ACCUMULATE))
                joint = joint + joint_block.sum(dtype=ACCUMULATE)
            return torch.cat(row_sums, dim=-1), joint
        self._per_bandwidth(update)

    def state_dict(self) -> dict:
        """The rows (the cached sums are recomputed on load)."""
        return {"batches": [batch.cpu() for batch in self.batches], "pushes": self.pushes,
                "bandwidths": self.bandwidths}

    def load_state_dict(self, state: dict) -> None:
        self.batches = collections.deque(state["batches"])
        self.pushes = state["pushes"]
        self.bandwidths = state["bandwidths"]
        if self.batches:
            self._recompute()
