"""`dora grid` on a real Slurm cluster: Debian's Slurm started on loopback in a temporary folder.

Marked ``slurm`` (deselected by default): ``./mmd-env pytest -m slurm``; `.ci/run` runs it. As root it
installs slurm-wlm, munge, slurmdbd and mariadb-server when missing (about 2 minutes); elsewhere it
is skipped with the reason. It launches ``dora grid slurm_check`` (the CPU sweep plus one XP that
must fail), waits for every job, and reads the outcome with ``python -m audiocraft_mmd.grid status``.
"""

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from slurm_cluster import ClusterUnavailable, single_node_cluster
from test_grids import status_lines

REPO = Path(__file__).resolve().parents[1]
GRID_TIMEOUT = 40 * 60


@pytest.mark.slurm
def test_slurm_check_grid_completes_and_surfaces_the_failure(tiny_egs, tmp_path):
    try:
        cluster = single_node_cluster()
        cluster_env = cluster.__enter__()
    except ClusterUnavailable as why:
        pytest.skip(f"no Slurm cluster here: {why}")
    try:
        env = {**os.environ, **cluster_env, "PYTHONPATH": str(REPO), "AUDIOCRAFT_DORA_DIR": str(tmp_path / "dora"),
               "AUDIOCRAFT_MMD_CHECK_EGS": str(tiny_egs)}
        grid = subprocess.run([sys.executable, "-m", "dora", "-P", "audiocraft_mmd", "grid", "slurm_check",
                               "--interval", "0.1"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=GRID_TIMEOUT)
        assert grid.returncode == 0, grid.stdout[-3000:] + grid.stderr[-3000:]  # dora grid: 0 whatever happened
        status = subprocess.run([sys.executable, "-m", "audiocraft_mmd.grid", "status", "slurm_check"], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=600)
        accounting = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State"], env=env, capture_output=True,
                                    text=True).stdout
    finally:
        cluster.__exit__(None, None, None)

    report = status.stdout + status.stderr
    assert status.returncode == 1, report[-3000:]  # the failure is surfaced as an exit code
    states = status_lines(status.stdout)
    assert len(states) == 6, report[-3000:]
    failed = [sig for sig, state in states.items() if state == "FAILED"]
    assert len(failed) == 1, report[-3000:]
    xps = tmp_path / "dora" / "xps"
    assert "must_fail" in json.dumps(json.loads((xps / failed[0] / ".argv.json").read_text()))
    assert "mmd.weight must be >= 0" in report  # the failed job's log tail
    # Slurm's own accounting agrees: 5 jobs COMPLETED, 1 FAILED.
    assert sorted(line.split("|")[1] for line in accounting.split()) == ["COMPLETED"] * 5 + ["FAILED"]
    for sig, state in states.items():
        if sig == failed[0]:
            continue
        assert state == "COMPLETED", report[-3000:]
        history = json.loads((xps / sig / "history.json").read_text())
        assert len(history) == 2
        assert {"mmd", "g_loss"} <= set(history[-1]["train"]) and "mel" in history[-1]["valid"]
        assert {"sisnr", "mi_parallel", "mi_delay", "entropy_mean"} <= set(history[-1]["evaluate"])
