"""``dora grid mmd_sweep``: the independence loss's weight and alignment, against the lambda = 0 baseline.

Each XP is ``solver=compression/mmd`` with one override set. Slurm resources come from the
``slurm`` section of ``config/config.yaml``. Without Slurm, ``dora grid mmd_sweep --dry_run --init``
creates the XPs and ``dora run -f SIG`` runs one.
"""

from audiocraft.grids.compression._explorers import CompressionExplorer
from dora import Launcher
import treetable as tt

WEIGHTS = [0., 1., 10., 100.]
ALIGNMENTS = ["parallel", "delay"]


class MMDExplorer(CompressionExplorer):
    """AudioCraft's compression table plus the loss and the codebook-dependence metrics of the
    evaluate stage (``evaluate.plugins``): read mean pairwise MI next to the entropies."""

    def get_grid_metrics(self):
        return [
            tt.group("train", [tt.leaf("epoch"), tt.leaf("mmd", ".4f"), tt.leaf("mmd_grad_ratio", ".2f")], align=">"),
            tt.group("valid", [tt.leaf("msspec", ".4f"), tt.leaf("sisnr", ".2f"), tt.leaf("mmd", ".4f")], align=">"),
            tt.group("evaluate", [
                tt.leaf("sisnr", ".2f"), tt.leaf("mmd_estimate", ".4f"), tt.leaf("entropy_mean", ".2f"),
                tt.leaf("entropy_min", ".2f"), tt.leaf("mi_parallel", ".3f"), tt.leaf("mi_delay", ".3f"),
                tt.leaf("nmi_delay", ".3f"),
            ], align=">"),
        ]


@MMDExplorer
def explorer(launcher: Launcher):
    launcher.bind_({"solver": "compression/mmd"})
    for alignment in ALIGNMENTS:
        for weight in WEIGHTS:
            launcher({"mmd.weight": weight, "mmd.alignment": alignment})
