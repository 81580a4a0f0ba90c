"""``dora grid mmd_sweep``: the paper-scale sweep of the independence loss, for a GPU cluster with Slurm.

Base: ``solver=compression/encodec_mmd_32khz`` (the paper's recipe). Axes: λ over three orders of
magnitude around the paper's (its λ = 10, 100, 1000, 10000 are about λ·47² in our normalisation, see
docs/METHOD.md) plus the λ = 0 baseline; kernel bandwidths (the paper's list, multiples of K·D, the median
heuristic); the loss's alignment (parallel, delay); and, with the paper's bandwidths, the paper's own
``permutation`` estimator beside the exact ``hsic`` one. 1 + 2 × 4 × 4 = 33 XPs.

Slurm resources (GPUs, memory, time, partition) come from the ``slurm`` section of
``config/config.yaml`` and the team file (``AUDIOCRAFT_CONFIG``, see config/teams/default.yaml).
Without Slurm: ``python -m audiocraft_mmd.grid local mmd_sweep`` runs the XPs here, one after another.
"""

from ._sweep import MMDExplorer, sweep

FRAMES_SQUARED = 47 ** 2  # T'² at 50 Hz for 1 s clips after the delay alignment (docs/METHOD.md)
WEIGHTS = [0., *(paper * FRAMES_SQUARED for paper in (10., 100., 1000., 10000.))]


@MMDExplorer
def explorer(launcher):
    launcher.bind_({"solver": "compression/encodec_mmd_32khz"})
    sweep(launcher, WEIGHTS, bandwidths=["paper", "dim", "median"], paper_estimators=["permutation"])
