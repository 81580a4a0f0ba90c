"""``dora grid slurm_check``: checks a Slurm set-up end to end: the CPU sweep, one XP that must fail,
a job of 2 processes, and tiny XPs to preempt and to kill.

Every XP of ``mmd_sweep_cpu`` (on 2 steps of 4 clips per epoch) should end COMPLETED with metrics, and the
XP labelled ``must_fail`` (``mmd.weight=-1``, refused at start-up) FAILED. ``dora grid`` exits 0 either
way; read the outcome with ``python -m audiocraft_mmd.grid status slurm_check`` (exit 1 when an XP
failed, so 1 is expected here).

The other XPs are for the real-Slurm test (``tests/test_slurm.py``), which acts on their jobs while
the grid runs:

- ``distributed``: ``gpus: 2``, so Dora asks for 2 tasks (one per GPU); each task initialises
  torch.distributed from Slurm's environment (through submitit; gloo on a CPU node), trains with
  ``mmd.scope=global`` and checks once that its loss and gradient equal a single process's on the
  same global batch (``mmd.scope_check``, :mod:`audiocraft_mmd.solvers.scope_check`). The test's
  cluster declares 2 placeholder GPUs; on a real cluster this runs on 2 GPUs with NCCL.
- ``preempted`` and ``uninterrupted``: the same tiny run (only the label differs); the test sends
  ``preempted`` the preemption signal mid-training, and its history must end equal to
  ``uninterrupted``'s.
- ``killed``: a longer run the test kills for good (SIGKILL): it must end FAILED.

Without the test acting on them, ``preempted`` completes and ``killed`` runs its 40 epochs. The data is
the default set, or the manifests in ``$AUDIOCRAFT_MMD_CHECK_EGS/{train,valid,evaluate,generate}`` when
that variable is set (the overrides are part of each XP's signature).
"""

from audiocraft_mmd.study.specs import check_data_overrides

from ._sweep import MMDExplorer
from .mmd_sweep_cpu import BUDGET, SLURM, cpu_sweep

# The sweep's XPs on fewer and smaller steps: a check of the set-up, not of training.
CHECK_BUDGET = {"optim.updates_per_epoch": 2, "dataset.batch_size": 4, "dataset.valid.num_samples": 4,
                "dataset.evaluate.batch_size": 4, "dataset.evaluate.num_samples": 4}
# Tiny runs (2 processes, preemption): train and valid only, a checkpoint after every epoch.
TINY = {"solver": "compression/mmd", **BUDGET, **CHECK_BUDGET, "evaluate.every": 1000, "num_threads": 1}
DISTRIBUTED = {"optim.epochs": 1, "mmd.scope": "global", "mmd.scope_check": True,
               # residual streams: a loss well away from 0 at the first step (quantized streams of
               # fresh codebooks are nearly constant)
               "mmd.source": "residual", "mmd.weight": 10.}
PREEMPTED_EPOCHS = 3
KILLED_EPOCHS = 40


@MMDExplorer
def explorer(launcher):
    launcher.bind_(check_data_overrides())
    tiny = launcher.bind(TINY)
    tiny.slurm_(**{**SLURM, "cpus_per_task": 1})
    # gpus=2 makes Dora ask for 2 tasks per node (one per GPU), each with cpus_per_task CPUs.
    tiny.bind({**DISTRIBUTED, "label": "distributed"}).slurm(gpus=2, mem_per_gpu=2)()
    for label in ("preempted", "uninterrupted"):
        tiny({"optim.epochs": PREEMPTED_EPOCHS, "label": label})
    tiny({"optim.epochs": KILLED_EPOCHS, "label": "killed"})

    cpu_sweep(launcher, **CHECK_BUDGET)
    launcher({"mmd.weight": -1., "label": "must_fail"})
