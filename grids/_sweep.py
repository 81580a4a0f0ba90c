"""What ``mmd_sweep`` and ``mmd_sweep_cpu`` share: the sweep's axes, its Explorer table, and the Slurm set-up.

The leading underscore keeps this module out of Dora's list of grids.
"""

from pathlib import Path
import shutil
import sys
import typing as tp

from audiocraft.environment import AudioCraftEnvironment
from audiocraft.grids.compression._explorers import CompressionExplorer
from dora import Launcher
import treetable as tt

from audiocraft_mmd.study.specs import ALIGNMENTS, BANDWIDTH_CHOICES

LOCAL_RUNNER = "python -m audiocraft_mmd.grid local"


def dry_run_requested(argv: tp.Sequence[str]) -> bool:
    """Whether a ``dora grid`` command line asks for ``--dry_run`` (argparse accepts any unique prefix)."""
    return any(len(arg) >= 4 and "--dry_run".startswith(arg.split("=")[0]) for arg in argv)


def check_slurm_available(argv: tp.Optional[tp.Sequence[str]] = None) -> None:
    """Stops ``dora grid`` with a clear message, before any XP is created, when it would submit without Slurm.

    Submission goes through ``sbatch``; without it submitit fails later with "Could not detect srun".
    Dry runs (``--dry_run``) and other callers of the explorer (the local runner) are not checked.
    """
    argv = list(sys.argv if argv is None else argv)
    invoked_by_dora_cli = Path(argv[0]).name == "dora" or Path(argv[0]).parent.name == "dora"
    if not invoked_by_dora_cli or "grid" not in argv or dry_run_requested(argv):
        return
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        grid = argv[argv.index("grid") + 1] if argv.index("grid") + 1 < len(argv) else "NAME"
        sys.exit(f"dora grid submits to Slurm, and no Slurm (sbatch, srun) was found on this machine.\n"
                 f"Run the grid's experiments here, one after another (resumable):\n"
                 f"    {LOCAL_RUNNER} {grid}\n"
                 f"or create them without running: dora grid {grid} --dry_run --init")


def team_partition() -> tp.Optional[str]:
    """The team file's Slurm partitions (``partitions.team`` then ``partitions.global``), or None."""
    partitions = AudioCraftEnvironment.instance()._get_cluster_config().get("partitions") or {}
    names = [partitions.get(kind) for kind in ("team", "global")]
    return ",".join(name for name in names if name) or None


def prepare_launcher(launcher: Launcher) -> None:
    """What every grid of this project does first: stop without Slurm, and take the team's partition."""
    check_slurm_available()
    partition = team_partition()
    # The config's slurm.partition wins over the team file's (Dora has no public getter).
    if partition is not None and launcher._slurm.partition is None:
        launcher.slurm_(partition=partition)


class MMDExplorer(CompressionExplorer):
    """AudioCraft's compression table plus the loss and the codebook-dependence metrics.

    ``train.mmd`` is the unclamped statistic; the evaluate columns (``evaluate.plugins``) appear once
    an XP has run its evaluate stage. Read mean pairwise MI next to the entropies: a collapsed
    codebook is trivially independent.
    """

    def __call__(self, launcher: Launcher) -> None:
        prepare_launcher(launcher)
        super().__call__(launcher)

    def get_grid_metrics(self):
        return [
            tt.group("train", [tt.leaf("epoch"), tt.leaf("g_loss", ".3f"), tt.leaf("mmd", ".4f"),
                               tt.leaf("mmd_grad_ratio", ".2f")], align=">"),
            tt.group("valid", [tt.leaf("mel", ".3f"), tt.leaf("sisnr", ".2f"), tt.leaf("mmd", ".4f")], align=">"),
            tt.group("evaluate", [
                tt.leaf("sisnr", ".2f"), tt.leaf("mmd_estimate", ".4f"), tt.leaf("entropy_mean", ".2f"),
                tt.leaf("entropy_min", ".2f"), tt.leaf("mi_parallel", ".3f"), tt.leaf("mi_delay", ".3f"),
                tt.leaf("nmi_delay", ".3f"),
            ], align=">"),
        ]


def sweep(launcher: Launcher, weights: tp.Sequence[float], bandwidths: tp.Sequence[str],
          alignments: tp.Sequence[str] = ALIGNMENTS, estimators: tp.Sequence[str] = ("hsic",),
          paper_estimators: tp.Sequence[str] = ()) -> None:
    """Schedules one λ = 0 baseline, then every (alignment, λ > 0, bandwidth, estimator) combination.

    Args:
        launcher: Dora launcher, already bound to the solver and budget.
        weights: The λ values; 0 gives the single baseline XP (alignment and kernel do not change it).
        bandwidths: Keys of :data:`BANDWIDTH_CHOICES`.
        alignments: ``mmd.alignment`` values.
        estimators: ``mmd.estimator`` values tried with every bandwidth choice.
        paper_estimators: Extra estimators tried with the ``paper`` bandwidths only (e.g. the paper's
            own ``permutation`` estimator, for a like-for-like reproduction).
    """
    if 0 in weights:
        launcher({"mmd.weight": 0.})
    for alignment in alignments:
        for weight in (w for w in weights if w != 0):
            for choice in bandwidths:
                extra = paper_estimators if choice == "paper" else ()
                for estimator in (*estimators, *extra):
                    launcher({"mmd.weight": weight, "mmd.alignment": alignment, "mmd.estimator": estimator,
                              **BANDWIDTH_CHOICES[choice]})
