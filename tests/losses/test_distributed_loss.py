"""`mmd.scope=global`: 2 processes (gloo) on one global batch give the loss and the gradients of 1 process."""

import os

import torch
import torch.distributed as dist

from common_utils import check_two_processes_match_one, on_two_processes


def test_two_processes_match_one_on_the_global_batch():
    check_two_processes_match_one("gloo")


def scope_check_worker(rank, world_size, port, results, cfg):
    """One process of :func:`check_global_scope` on a tiny EnCodec (identical on every rank), then
    the same with a broken gather (each process's rows alone), which the check must catch."""
    from audiocraft.models import builders
    from audiocraft_mmd.losses import MMDIndependenceLoss
    from audiocraft_mmd.solvers import scope_check

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        model = builders.get_compression_model(cfg)
        audio = torch.randn(4, 1, 4000, generator=torch.Generator().manual_seed(1))
        share = audio.shape[0] // world_size
        batch = audio[rank * share:(rank + 1) * share]
        loss = MMDIndependenceLoss(delays=[0, 1, 2, 3])
        good = scope_check.check_global_scope(model, "residual", loss, batch)
        scope_check.gather_streams = lambda streams: streams
        results[rank] = (good, scope_check.check_global_scope(model, "residual", loss, batch))
    finally:
        dist.destroy_process_group()


def test_scope_check_passes_on_the_gathered_loss_and_catches_a_broken_gather():
    from audiocraft_mmd import train
    from audiocraft_mmd.solvers.scope_check import TOLERANCE

    cfg = train.main.get_xp(["solver=compression/mmd", "device=cpu"]).cfg
    results = on_two_processes(scope_check_worker, cfg)
    for rank in (0, 1):
        good, bad = results[rank]
        assert good.world_size == 2 and abs(good.loss) > 1e-4
        assert good.passed, good
        assert not bad.passed and bad.loss_error > 100 * TOLERANCE, bad
