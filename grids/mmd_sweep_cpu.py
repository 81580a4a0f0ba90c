"""``dora grid mmd_sweep_cpu``: the same sweep reduced to run on a CPU in minutes (5 XPs).

Base: ``solver=compression/mmd`` (the default small codec) on a budget of 2 epochs × 10 updates, with
the evaluate stage (entropies, pairwise MI) at the end. Axes: λ ∈ {0, 10}, bandwidths ∈ {dim,
median}, alignment ∈ {parallel, delay}. On a machine without Slurm:
``python -m audiocraft_mmd.grid local mmd_sweep_cpu``; on a Slurm cluster, ``dora grid mmd_sweep_cpu``
asks for CPU-only jobs (no GPU) of the sizes below, partition from the config or team file.
"""

from ._sweep import MMDExplorer, sweep

BUDGET = {
    "optim.epochs": 2, "optim.updates_per_epoch": 10, "dataset.batch_size": 8,
    "dataset.valid.num_samples": 16, "dataset.evaluate.batch_size": 8, "dataset.evaluate.num_samples": 16,
    "evaluate.every": 2, "generate.every": 1000, "checkpoint.save_every": None,
}
SLURM = {"gpus": 0, "cpus_per_task": 2, "mem_per_gpu": 4, "time": 30}  # mem_per_gpu: GB for the (one) task


def cpu_sweep(launcher, **budget):
    """The sweep on ``BUDGET``, with ``budget`` overriding some of its keys (e.g. fewer updates)."""
    launcher.slurm_(**SLURM)
    launcher.bind_({"solver": "compression/mmd", **BUDGET, **budget})
    sweep(launcher, weights=[0., 10.], bandwidths=["dim", "median"])


explorer = MMDExplorer(cpu_sweep)
