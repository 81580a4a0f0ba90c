"""The sweep grids (their XPs, configs and Slurm requests) and the local grid runner, without Slurm."""

import json
import math
import os
from pathlib import Path
import subprocess
import sys

import pytest

from audiocraft.environment import AudioCraftEnvironment

from audiocraft_mmd import grid as grid_command
from audiocraft_mmd.grids import _sweep
from audiocraft_mmd.solvers.compression_mmd import validate_mmd_config
from audiocraft_mmd.study import budget
from audiocraft_mmd.train import main

from common_utils import REPO, slurm_requests, status_lines


def kernel(cfg) -> str:
    return {"none": "paper"}.get(cfg.mmd.bandwidth_scale, cfg.mmd.bandwidth_scale)


def test_paper_scale_sweep_covers_every_axis(grid_dora_dir):
    sheeps = grid_command.grid_sheeps("mmd_sweep")
    cfgs = [sheep.xp.cfg for sheep in sheeps]
    assert len({sheep.xp.sig for sheep in sheeps}) == len(sheeps) == 33
    baselines = [cfg for cfg in cfgs if cfg.mmd.weight == 0]
    assert len(baselines) == 1
    weights = sorted({cfg.mmd.weight for cfg in cfgs if cfg.mmd.weight > 0})
    assert math.log10(weights[-1] / weights[0]) >= 3  # several orders of magnitude
    assert 1000 * 47 ** 2 in weights  # the paper's lambda in our normalisation (docs/METHOD.md)
    cells = {(cfg.mmd.alignment, cfg.mmd.weight, kernel(cfg), cfg.mmd.estimator) for cfg in cfgs if cfg.mmd.weight > 0}
    assert len(cells) == 32
    for alignment in ("parallel", "delay"):
        for weight in weights:
            for choice in ("paper", "dim", "median"):
                assert (alignment, weight, choice, "hsic") in cells
            assert (alignment, weight, "paper", "permutation") in cells
    for cfg in cfgs:
        assert cfg.solver == "compression_mmd" and cfg.sample_rate == 32000  # the paper's recipe
        assert list(cfg.mmd.bandwidths) == list(_sweep.BANDWIDTH_CHOICES[kernel(cfg)]["mmd.bandwidths"])
        validate_mmd_config(cfg)


def test_cpu_sweep_is_the_same_grid_reduced(grid_dora_dir):
    sheeps = grid_command.grid_sheeps("mmd_sweep_cpu")
    cfgs = [sheep.xp.cfg for sheep in sheeps]
    assert len(sheeps) == 5
    assert {(cfg.mmd.alignment, kernel(cfg)) for cfg in cfgs if cfg.mmd.weight > 0} == {
        ("parallel", "dim"), ("parallel", "median"), ("delay", "dim"), ("delay", "median")}
    requests = slurm_requests("mmd_sweep_cpu")
    for sheep in sheeps:
        assert sheep.xp.cfg.sample_rate == 8000 and sheep.xp.cfg.optim.epochs == 2
        assert requests[sheep.xp.sig].gpus == 0 and requests[sheep.xp.sig].cpus_per_task == 2
        validate_mmd_config(sheep.xp.cfg)


def test_codec_recipe_grid_adds_one_lever_at_a_time(grid_dora_dir):
    sheeps = grid_command.grid_sheeps("codec_recipe")
    cfgs = [sheep.xp.cfg for sheep in sheeps]
    assert len({sheep.xp.sig for sheep in sheeps}) == len(sheeps) == 9
    levers = [(cfg.losses.logmel > 0, cfg.encodec.autoencoder, cfg.upsampling.stages,
               cfg.upsampling.transposed_init, cfg.upsampling.transposed_average, cfg.seed) for cfg in cfgs]
    interp = (True, "seanet_spectral_interp")
    recipe = (*interp, 1, "default", False, 2036)
    assert levers == [
        (False, "seanet", 1, "default", False, 2036), (True, "seanet", 1, "default", False, 2036),
        (True, "seanet_spectral", 1, "default", False, 2036), recipe, (*interp, 2, "default", False, 2036),
        (*interp, None, "default", False, 2036), (*interp, 1, "nearest", False, 2036),
        (*interp, 1, "default", True, 2036), (*recipe[:5], 2)]
    requests = slurm_requests("codec_recipe")
    for sheep in sheeps:
        assert sheep.xp.cfg.mmd.weight == 1 and sheep.xp.cfg.optim.epochs * sheep.xp.cfg.optim.updates_per_epoch == 1000
        assert requests[sheep.xp.sig].gpus == 0


def test_codec_budget_grid_is_the_study_baseline_evaluated_every_500_updates(grid_dora_dir):
    sheeps = grid_command.grid_sheeps("codec_budget")
    study = grid_command.grid_sheeps("study_codecs")[0].xp.cfg  # the study's baseline
    assert [sheep.xp.cfg.seed for sheep in sheeps] == [2036, 2037]
    for sheep in sheeps:
        cfg = sheep.xp.cfg
        assert cfg.mmd.weight == 0 and cfg.seanet == study.seanet and cfg.losses == study.losses
        assert cfg.optim.updates_per_epoch == study.optim.updates_per_epoch
        assert cfg.optim.epochs * cfg.optim.updates_per_epoch == 3000
        assert cfg.evaluate.every == cfg.checkpoint.save_every
        assert cfg.evaluate.every * cfg.optim.updates_per_epoch == 500
        assert cfg.checkpoint.keep_last is None  # every budget's checkpoint stays, for the LMs
        assert slurm_requests("codec_budget")[sheep.xp.sig].gpus == 0
    # `study budget` reads the XPs of these overrides
    assert [sheep.xp.sig for sheep in sheeps] == [
        main.get_xp(main.value_to_argv(budget.overrides(seed))).sig for seed in (2036, 2037)]


def test_slurm_requests_come_from_the_config_and_team_file(grid_dora_dir, tmp_path, monkeypatch):
    team = tmp_path / "team.yaml"
    team.write_text("default:\n  dora_dir: outputs\n  partitions: {global: shared, team: ours}\n"
                    "  reference_dir: /tmp\n")
    monkeypatch.setenv("AUDIOCRAFT_CONFIG", str(team))
    AudioCraftEnvironment.reset()
    try:
        requests = slurm_requests("mmd_sweep")
    finally:
        monkeypatch.undo()
        AudioCraftEnvironment.reset()
    assert len(requests) == 33
    slurm = next(iter(requests.values()))
    assert slurm.partition == "ours,shared"
    assert (slurm.gpus, slurm.mem_per_gpu, slurm.time) == (1, 40, 4320)  # config/config.yaml's slurm section


def test_dora_grid_without_slurm_points_at_the_local_runner(monkeypatch):
    monkeypatch.setattr(_sweep.shutil, "which", lambda program: None)
    dora_cli = [str(Path(sys.executable).parent / "dora"), "grid", "mmd_sweep_cpu"]
    with pytest.raises(SystemExit, match="python -m audiocraft_mmd.grid local mmd_sweep_cpu"):
        _sweep.check_slurm_available(dora_cli)
    for argv in ([*dora_cli, "--dry_run", "--init"], [*dora_cli, "--dry"], ["python", "-m", "audiocraft_mmd.grid"]):
        _sweep.check_slurm_available(argv)  # dry runs and the local runner need no Slurm


def test_unknown_grid_lists_the_grids():
    with pytest.raises(SystemExit, match="available grids: codec_budget, codec_recipe, independence, independence_lms, "
                                         "mmd_sweep, mmd_sweep_cpu, slurm_check"):
        grid_command.load_explorer("mmd_swep")


def run_grid_command(*args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audiocraft_mmd.grid", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_local_runner_runs_reports_failures_and_skips_finished_xps(tiny_egs, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "AUDIOCRAFT_DORA_DIR": str(tmp_path / "dora"),
           "AUDIOCRAFT_MMD_CHECK_EGS": str(tiny_egs)}
    failing = run_grid_command("local", "slurm_check", "must_fail", cwd=tmp_path, env=env)
    assert failing.returncode == 1, failing.stdout[-3000:] + failing.stderr[-3000:]
    assert "ConfigError: mmd.weight must be >= 0" in failing.stdout
    assert "1 FAILED" in failing.stdout

    baseline = run_grid_command("local", "slurm_check", "weight=0.0", cwd=tmp_path, env=env)
    assert baseline.returncode == 0, baseline.stdout[-3000:] + baseline.stderr[-3000:]
    assert "Train Summary | Epoch 2" in baseline.stdout and "COMPLETED in" in baseline.stdout
    ((folder, state),) = status_lines(baseline.stdout).items()
    assert state == "COMPLETED"
    history = json.loads((tmp_path / "dora" / "xps" / folder / "history.json").read_text())
    assert len(history) == 2 and "mi_delay" in history[-1]["evaluate"]

    again = run_grid_command("local", "slurm_check", "weight=0.0", cwd=tmp_path, env=env)
    assert again.returncode == 0 and "already finished" in again.stdout and "Train Summary" not in again.stdout

    status = run_grid_command("status", "slurm_check", cwd=tmp_path, env=env)
    assert status.returncode == 1  # the must_fail XP
    states = status_lines(status.stdout)
    assert sorted(states.values()) == ["COMPLETED", "FAILED", *["NOT_STARTED"] * (len(states) - 2)] and \
        len(states) == 10
    assert states[folder] == "COMPLETED"
