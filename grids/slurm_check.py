"""``dora grid slurm_check``: checks a Slurm set-up end to end with the CPU sweep plus one XP that must fail.

Every XP of ``mmd_sweep_cpu`` should end COMPLETED with metrics, and the XP labelled ``must_fail``
(``mmd.weight=-1``, refused at start-up) FAILED. ``dora grid`` exits 0 either way; read the outcome with
``python -m audiocraft_mmd.grid status slurm_check`` (exit 1 when an XP failed, so 1 is expected here,
with exactly one failure). The data is the default set, or the manifests in
``$AUDIOCRAFT_MMD_CHECK_EGS/{train,valid,evaluate,generate}`` when that variable is set (the overrides
are part of each XP's signature).
"""

from ._sweep import MMDExplorer, check_data_overrides
from .mmd_sweep_cpu import cpu_sweep


@MMDExplorer
def explorer(launcher):
    launcher.bind_(check_data_overrides())
    cpu_sweep(launcher)
    launcher({"mmd.weight": -1., "label": "must_fail"})
