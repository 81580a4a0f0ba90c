"""A non-editable install carries the config tree and the grids (AudioCraft's own wheel loses them)."""

import os
import subprocess
import sys

from common_utils import REPO


def test_installed_package_finds_config_and_grids(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    assert (target / "audiocraft_mmd" / "config" / "solver" / "compression" / "mmd.yaml").is_file()
    assert not (target / "audiocraft_mmd" / "config").is_symlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "AUDIOCRAFT_DORA_DIR": str(tmp_path / "dora")}
    env.pop("AUDIOCRAFT_CONFIG", None)
    grid = subprocess.run([sys.executable, "-m", "dora", "-P", "audiocraft_mmd", "grid", "mmd_sweep", "--dry_run",
                           "--init"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert grid.returncode == 0, grid.stderr[-3000:]
    xps = list((tmp_path / "dora" / "xps").iterdir())
    assert len(xps) == 33  # grids/mmd_sweep.py: 1 baseline + 2 alignments x 4 weights x 4 kernels
    check = subprocess.run(
        [sys.executable, "-c", "import audiocraft_mmd, audiocraft.train as t; print(audiocraft_mmd.__file__); "
         "print(t.main.get_xp(['solver=compression/mmd']).cfg.solver)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    module_file, solver = check.stdout.split()[-2:]
    assert module_file.startswith(str(target)) and solver == "compression_mmd"
