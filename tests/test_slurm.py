"""`dora grid` on a real Slurm cluster: Debian's Slurm started on loopback in a temporary folder.

Marked ``slurm`` (deselected by default): ``./mmd-env pytest -m slurm``; `.ci/run` runs it. As root it
installs slurm-wlm, munge, slurmdbd and mariadb-server when missing (about 2 minutes); elsewhere it
is skipped with the reason. It launches ``dora grid slurm_check`` (see that grid's docstring): the
CPU sweep, one XP that must fail, a job of 2 processes, and tiny XPs that the test, while the grid
runs, preempts (the signal submitit and Dora requeue on) and kills for good. It waits for every job
and reads the outcome with ``python -m audiocraft_mmd.grid status`` and Slurm's accounting.

The node declares 4 CPUs and 16 GB, more than a 2-core CI machine has, so that 2 jobs run at once
(their start-up, mostly imports, overlaps), and 2 placeholder GPUs, so that the 2-process job
(Dora's ``gpus: 2``) is scheduled; its processes run on CPU with gloo.
"""

import contextlib
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
import typing as tp

import pytest

from common_utils import (REPO, ClusterUnavailable, single_node_cluster, status_lines, unavailable,
                          without_durations)

GRID_TIMEOUT = 40 * 60
SUBMITIT_PREEMPTION_SIGNAL = "USR2"  # submitit's --signal (what Slurm sends on preemption, and before a time-out)


def labelled_xps(xps: Path) -> tp.Dict[str, Path]:
    """``{label: xp folder}`` of the grid's XPs that have a label."""
    found = {}
    for argv in xps.glob("*/.argv.json"):
        for override in json.loads(argv.read_text()):
            if override.startswith("label="):
                found[override.split("=", 1)[1].strip("\"'")] = argv.parent  # Dora quotes strings: label="killed"
    return found


def job_id(xp: Path) -> tp.Optional[str]:
    """The Slurm job of an XP (Dora writes it to ``job.json``), once submitted."""
    try:
        return json.loads((xp / "job.json").read_text())["job_id"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def epochs_done(xp: Path) -> int:
    try:
        return len(json.loads((xp / "history.json").read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def kill_tasks(job: str, env: dict) -> None:
    """SIGKILLs the processes of the job's tasks (its step 0), as the out-of-memory killer or a crash
    would: no signal handler runs, so nothing is checkpointed or requeued. (``scancel`` would end the
    job CANCELLED, and submitit lets its tasks run on until Slurm's KillWait.)"""
    listing = subprocess.run(["scontrol", "listpids", job], env=env, capture_output=True, text=True, check=True).stdout
    pids = [int(fields[0]) for fields in map(str.split, listing.splitlines()[1:])
            if len(fields) > 2 and fields[2] == "0"]
    assert pids, listing
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def act_on_jobs(grid: subprocess.Popen, xps: Path, env: dict, preempted_epochs: int) -> tp.Dict[str, str]:
    """While the grid runs: preempts ``preempted`` after its first epoch (before its last), and kills
    ``killed`` for good once it trains. Returns ``{label: job id}`` of the jobs acted on."""
    done: tp.Dict[str, str] = {}
    deadline = time.time() + GRID_TIMEOUT
    while len(done) < 2 and grid.poll() is None and time.time() < deadline:
        time.sleep(0.5)
        labelled = labelled_xps(xps)
        preempted, killed = labelled.get("preempted"), labelled.get("killed")
        if "preempted" not in done and preempted is not None and 1 <= epochs_done(preempted) < preempted_epochs:
            done["preempted"] = job_id(preempted)
            # Only the job's steps (the training process) get it, as on preemption; submitit's handler
            # calls Dora's checkpoint hook, which requeues the job; it restarts from the last checkpoint.
            subprocess.run(["scancel", f"--signal={SUBMITIT_PREEMPTION_SIGNAL}", done["preempted"]], env=env,
                           check=True)
        if "killed" not in done and killed is not None and epochs_done(killed) >= 1:
            done["killed"] = job_id(killed)
            kill_tasks(done["killed"], env)
    return done


@pytest.mark.slurm
def test_slurm_check_grid_multi_task_preemption_and_failures(tiny_egs, tmp_path):
    from audiocraft_mmd.grids.slurm_check import KILLED_EPOCHS, PREEMPTED_EPOCHS
    from audiocraft_mmd.solvers.scope_check import TOLERANCE

    try:
        cluster = single_node_cluster(cpus=4, memory_mb=16000, gpus=2)
        cluster_env = cluster.__enter__()
    except ClusterUnavailable as why:
        unavailable(f"no Slurm cluster here: {why}")
    xps = tmp_path / "dora" / "xps"
    try:
        env = {**os.environ, **cluster_env, "PYTHONPATH": str(REPO), "AUDIOCRAFT_DORA_DIR": str(tmp_path / "dora"),
               "AUDIOCRAFT_MMD_CHECK_EGS": str(tiny_egs)}
        with open(tmp_path / "grid.log", "w") as grid_log:
            grid = subprocess.Popen([sys.executable, "-m", "dora", "-P", "audiocraft_mmd", "grid", "slurm_check",
                                     "--interval", "0.1"], cwd=tmp_path, env=env, stdout=grid_log,
                                    stderr=subprocess.STDOUT, text=True)
            try:
                acted = act_on_jobs(grid, xps, env, PREEMPTED_EPOCHS)
                grid.wait(timeout=GRID_TIMEOUT)
            finally:
                if grid.poll() is None:
                    grid.kill()
        grid_output = (tmp_path / "grid.log").read_text()
        assert grid.returncode == 0, grid_output[-3000:]  # dora grid: 0 whatever happened
        status = subprocess.run([sys.executable, "-m", "audiocraft_mmd.grid", "status", "slurm_check"], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=600)
        # -D: every run of a job, the requeued one's first run included.
        accounting = subprocess.run(["sacct", "-X", "-D", "-n", "-P", "-o", "JobID,State"], env=env,
                                    capture_output=True, text=True).stdout
        distributed_job = job_id(labelled_xps(xps)["distributed"])
        tasks = subprocess.run(["sacct", "-n", "-P", "-o", "JobID,NTasks", "-j", distributed_job],
                               env=env, capture_output=True, text=True).stdout
    finally:
        cluster.__exit__(None, None, None)

    report = status.stdout + status.stderr
    assert set(acted) == {"preempted", "killed"}, (acted, grid_output[-3000:])
    assert status.returncode == 1, report[-3000:]  # the failures are surfaced as an exit code
    states = status_lines(status.stdout)
    labelled = labelled_xps(xps)
    assert len(states) == 10, report[-3000:]
    by_label = {label: states[folder.name] for label, folder in labelled.items()}
    assert by_label["must_fail"] == "FAILED" and by_label["killed"] == "FAILED", report[-3000:]
    assert sorted(states.values()) == ["COMPLETED"] * 8 + ["FAILED"] * 2, report[-3000:]
    assert "mmd.weight must be >= 0" in report  # the refused XP's log tail
    assert f"--- {labelled['killed'].name} FAILED" in report  # the killed XP, with its log tail:
    assert "Train Summary | Epoch 1" in report.split(f"--- {labelled['killed'].name} FAILED")[1]
    assert 1 <= epochs_done(labelled["killed"]) < KILLED_EPOCHS

    # Slurm's accounting agrees, and shows the preempted job's first run.
    records = [line.split("|") for line in accounting.split()]
    preempted_runs = [state for job, state in records if job == acted["preempted"]]
    assert preempted_runs == ["REQUEUED", "COMPLETED"], accounting
    assert [state for job, state in records if job == acted["killed"]] == ["FAILED"], accounting

    # The preempted XP resumed from its checkpoint into exactly the run that was never interrupted.
    preempted = json.loads((labelled["preempted"] / "history.json").read_text())
    uninterrupted = json.loads((labelled["uninterrupted"] / "history.json").read_text())
    assert len(preempted) == PREEMPTED_EPOCHS
    assert without_durations(preempted) == without_durations(uninterrupted)
    assert "Restoring" in (labelled["preempted"] / "solver.log.0").read_text() or \
        (labelled["preempted"] / "solver.log.0").read_text().count("Train Summary | Epoch 1") == 1

    # 2 processes started by Slurm initialised torch.distributed and matched one process's loss.
    distributed = labelled["distributed"]
    assert "|2" in tasks, tasks  # the job step ran 2 tasks
    assert (distributed / "solver.log.1").exists()
    (entry,) = json.loads((distributed / "history.json").read_text())
    train = entry["train"]
    assert train["scope_check_world_size"] == 2
    assert abs(train["scope_check_loss"]) > 1e-4  # a loss away from 0, so that equality means something
    assert train["scope_check_loss_error"] <= TOLERANCE and train["scope_check_grad_error"] <= TOLERANCE

    for label, folder in labelled.items():
        if label in ("must_fail", "killed"):
            continue
        assert "mmd" in json.loads((folder / "history.json").read_text())[-1]["train"]
    for folder in xps.iterdir():
        if folder in labelled.values():
            continue
        # The CPU sweep's XPs: 2 epochs with the evaluate stage's metrics.
        history = json.loads((folder / "history.json").read_text())
        assert len(history) == 2
        assert {"mmd", "g_loss"} <= set(history[-1]["train"]) and "mel" in history[-1]["valid"]
        assert {"sisnr", "mi_parallel", "mi_delay", "entropy_mean"} <= set(history[-1]["evaluate"])
