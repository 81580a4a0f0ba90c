"""Dora entry point: ``dora run solver=compression/mmd`` from the repository root.

Dora finds this module because ``audiocraft_mmd/`` is the only folder of the repository root holding
both ``__init__.py`` and ``train.py``; elsewhere use ``dora -P audiocraft_mmd`` (or
``DORA_PACKAGE=audiocraft_mmd``). The config tree is the package's ``config/``, grids are
``audiocraft_mmd.grids``. This module also stands in for ``audiocraft.train`` (see
:mod:`audiocraft_mmd.integration`), so ``//sig/SIG`` references resolve to this project's XPs.
"""

import logging
import multiprocessing
import os
from pathlib import Path
import random
import sys
import typing as tp

from dora import git_save, hydra_main, XP
import flashy
from hydra.core.global_hydra import GlobalHydra
import omegaconf

from audiocraft.utils.cluster import get_slurm_parameters

from .data.check import check_datasource
from .errors import ConfigError
from .utils.xps import dora_dir

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "evaluate", "generate")


def resolve_device(cfg: omegaconf.DictConfig) -> None:
    """Replaces ``device=auto`` by ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch
    if cfg.device == "auto":
        cfg.device = "cuda" if torch.cuda.is_available() else "cpu"
        logger.info("device=auto resolved to %s", cfg.device)


def split_batch_sizes(cfg: omegaconf.DictConfig, world_size: int) -> None:
    """Turns global batch sizes into per-process ones, refusing sizes that do not divide.

    Every size is checked before any is changed, so a refused config is left as it was.
    """
    sizes: tp.Dict[tp.Tuple[str, ...], int] = {("dataset", "batch_size"): cfg.dataset.batch_size}
    for split in SPLITS:
        split_cfg = cfg.dataset.get(split)
        if split_cfg is not None and split_cfg.get("batch_size") is not None:
            sizes[("dataset", split, "batch_size")] = split_cfg.batch_size
    for key, value in sizes.items():
        if value % world_size != 0:
            raise ConfigError(f"{'.'.join(key)}={value} is not divisible by the number of processes ({world_size}).")
    for key, value in sizes.items():
        omegaconf.OmegaConf.update(cfg, ".".join(key), value // world_size)


def resolve_datasource_paths(cfg: omegaconf.DictConfig) -> None:
    """Makes manifest paths absolute w.r.t. the folder dora was started from."""
    for key, value in cfg.datasource.items():
        if isinstance(value, str):
            cfg.datasource[key] = git_save.to_absolute_path(value)


def prepare_data_if_missing(cfg: omegaconf.DictConfig) -> None:
    """Builds the configured dataset (``prepare_data`` section) when its manifests are missing."""
    prep = cfg.get("prepare_data")
    if prep is None or prep.get("source") is None:
        return
    from .data.prepare import ensure_dataset
    ensure_dataset(source=prep.source, name=prep.name, sample_rate=prep.sample_rate,
                   channels=prep.channels, egs_root=Path(git_save.to_absolute_path(prep.egs_root)))


def resolve_solver_config(cfg: omegaconf.DictConfig) -> None:
    """Lets a registered solver fill config values it reads elsewhere (its ``resolve_config``, e.g. the
    LM's sample rate from its codec) before the data checks and before anything is built."""
    from .registry import SOLVERS
    from . import solvers  # noqa: F401  (they register themselves on import)
    resolve = getattr(SOLVERS.get(cfg.solver), "resolve_config", None)
    if resolve is not None:
        resolve(cfg)


def get_solver(cfg: omegaconf.DictConfig):
    """Builds the solver named by ``cfg.solver`` (ours through the registry, or AudioCraft's)."""
    from audiocraft import solvers
    resolve_device(cfg)
    split_batch_sizes(cfg, flashy.distrib.world_size())
    resolve_datasource_paths(cfg)
    resolve_solver_config(cfg)
    check_datasource(cfg)
    return solvers.get_solver(cfg)


def get_solver_from_xp(xp: XP, override_cfg: tp.Optional[tp.Union[dict, omegaconf.DictConfig]] = None,
                       restore: bool = True, load_best: bool = True,
                       ignore_state_keys: tp.Sequence[str] = (), disable_fsdp: bool = True):
    """The solver of a Dora XP, restored from its last checkpoint (AudioCraft 1.3.0's signature).

    AudioCraft's ``get_eval_solver_from_sig`` calls this module through the ``audiocraft.train`` alias.

    Args:
        xp: The Dora XP.
        override_cfg: Nested values merged into the XP's config (``{'optim': {'lr': 1e-4}}``); the
            signature and folder are unchanged.
        restore: Restore the state of the last checkpoint.
        load_best: Load the best state (the EMA weights where the solver keeps them).
        ignore_state_keys: State sources not to restore, e.g. ``['optimizer']``.
        disable_fsdp: Turn FSDP off; its sharded states are then ignored (needs ``load_best``).
    """
    logger.info("Loading solver from XP %s. Overrides used: %s", xp.sig, xp.argv)
    cfg = xp.cfg
    if override_cfg is not None:
        cfg = omegaconf.OmegaConf.merge(cfg, omegaconf.DictConfig(override_cfg))
    ignore_state_keys = list(ignore_state_keys)
    if disable_fsdp and cfg.fsdp.use:
        if not load_best:
            raise ConfigError("disable_fsdp=True restores the best state only: pass load_best=True.")
        cfg.fsdp.use = False
        ignore_state_keys += ["model", "ema", "best_state"]  # sharded by FSDP; fsdp_best_state is used instead
    try:
        with xp.enter():
            solver = get_solver(cfg)
            if restore:
                solver.restore(load_best=load_best, ignore_state_keys=ignore_state_keys)
        return solver
    finally:
        GlobalHydra.instance().clear()


def get_solver_from_sig(sig: str, *args, **kwargs):
    """The solver of XP ``sig`` (e.g. in a notebook); see :func:`get_solver_from_xp` for the arguments."""
    return get_solver_from_xp(main.get_xp_from_sig(sig), *args, **kwargs)


def init_seed_and_system(cfg: omegaconf.DictConfig) -> None:
    import numpy as np
    import torch
    from audiocraft.modules.transformer import set_efficient_attention_backend

    multiprocessing.set_start_method(cfg.mp_start_method, force=True)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.num_threads)
    os.environ["MKL_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(cfg.num_threads)
    set_efficient_attention_backend(cfg.efficient_attention_backend)


@hydra_main(config_path="config", config_name="config", version_base="1.3")
def main(cfg):
    init_seed_and_system(cfg)
    log_name = f"{cfg.execute_only}.log.{{rank}}" if cfg.execute_only else "solver.log.{rank}"
    flashy.setup_logging(level=str(cfg.logging.level).upper(), log_name=log_name)
    resolve_device(cfg)
    flashy.distrib.init(backend="nccl" if cfg.device == "cuda" else "gloo")
    if flashy.distrib.is_rank_zero():
        prepare_data_if_missing(cfg)
    flashy.distrib.barrier()
    solver = get_solver(cfg)
    if cfg.show:
        solver.show()
        return
    if cfg.execute_only:
        if not (cfg.execute_inplace or cfg.continue_from is not None):
            raise ConfigError("execute_only needs continue_from=<sig or path> or execute_inplace=true.")
        solver.restore(replay_metrics=False)
        solver.run_one_stage(cfg.execute_only)
        return
    return solver.run()


# Absolute, and exported, so that every child process (whatever its working directory) and
# AudioCraft's //sig/ resolution agree on the same folder.
main.dora.dir = dora_dir()
os.environ["AUDIOCRAFT_DORA_DIR"] = str(main.dora.dir)
main._base_cfg.slurm = get_slurm_parameters(main._base_cfg.slurm)
if main.dora.shared is not None and not os.access(main.dora.shared, os.R_OK):
    print("No read permission on dora.shared folder, ignoring it.", file=sys.stderr)
    main.dora.shared = None

if __name__ == "__main__":
    main()
