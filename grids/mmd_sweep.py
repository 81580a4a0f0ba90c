"""``dora grid mmd_sweep``: the independence loss's weight and alignment, against the lambda = 0 baseline.

Each XP is ``solver=compression/mmd`` with one override set. Slurm resources come from the
``slurm`` section of ``config/config.yaml``. Without Slurm, ``dora grid mmd_sweep --dry_run --init``
creates the XPs and ``dora run -f SIG`` runs one.
"""

from dora import Explorer, Launcher

WEIGHTS = [0., 1., 10., 100.]
ALIGNMENTS = ["parallel", "delay"]


@Explorer
def explorer(launcher: Launcher):
    launcher.bind_({"solver": "compression/mmd"})
    for alignment in ALIGNMENTS:
        for weight in WEIGHTS:
            launcher({"mmd.weight": weight, "mmd.alignment": alignment})
