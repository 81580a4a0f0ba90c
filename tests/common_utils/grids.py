"""The grids from the tests: Slurm requests as `dora grid` would submit them, the grid command's report."""

import re


def slurm_requests(name: str) -> dict:
    """Each XP's Slurm request, as ``dora grid`` would submit it."""
    from dora.explore import Herd, Launcher
    from dora.shep import Shepherd
    from audiocraft_mmd import grid as grid_command
    from audiocraft_mmd import train
    herd = Herd()
    grid_command.load_explorer(name)(Launcher(Shepherd(train.main), train.main.get_slurm_config(), herd))
    return herd.slurm_configs


def status_lines(output: str) -> dict:
    """``{sig: state}`` from the report of ``python -m audiocraft_mmd.grid``."""
    return dict(match.groups() for match in re.finditer(r"^([0-9a-f]{8})  (\S+)", output, re.MULTILINE))
