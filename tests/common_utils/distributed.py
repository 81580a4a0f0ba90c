"""Two processes on one global batch against one process (``mmd.scope=global``), for the CPU test
(gloo, tests/losses/test_distributed_loss.py) and the GPU one (NCCL, tests/test_gpu.py).

The workers are module-level so that spawned processes can unpickle them; the loss is imported
inside the functions, so that importing :mod:`common_utils` imports nothing of audiocraft_mmd.
"""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

BATCH, K, D, T, DELAYS = 4, 4, 6, 12, [0, 1, 2, 3]


def encoder_and_batch():
    """A linear 'encoder' turning inputs into K streams, and one global batch with dependent codebooks."""
    torch.manual_seed(0)
    encoder = torch.nn.Linear(8, K * D)
    inputs = torch.randn(BATCH, T, 8)
    inputs[..., 1] = inputs[..., 0] ** 2
    return encoder, inputs


def loss_and_grads(encoder, inputs):
    from audiocraft_mmd.losses import mmd_independence
    from audiocraft_mmd.losses.distributed import gather_streams

    streams = encoder(inputs).reshape(inputs.shape[0], T, K, D).permute(0, 2, 3, 1)  # [B, K, D, T]
    loss = mmd_independence(gather_streams(streams), delays=DELAYS, clamp=False).estimate
    encoder.zero_grad()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in encoder.parameters()]


def worker(rank, world_size, port, results, backend="gloo"):
    """One process of ``world_size``: gloo on CPU, or NCCL on GPU ``rank`` (tests/test_gpu.py)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        encoder, inputs = encoder_and_batch()
        encoder, inputs = encoder.to(device), inputs.to(device)
        share = BATCH // world_size
        loss, grads = loss_and_grads(encoder, inputs[rank * share:(rank + 1) * share])
        for grad in grads:  # what flashy.distrib.sync_model does before the optimizer step
            dist.all_reduce(grad)
            grad /= world_size
        results[rank] = (loss.cpu(), [grad.cpu() for grad in grads])
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def on_two_processes(fn, *args) -> dict:
    """Runs ``fn(rank, 2, port, results, *args)`` on 2 spawned processes; returns ``{rank: result}``."""
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(fn, args=(2, free_port(), results, *args), nprocs=2, join=True)
        return dict(results)


def check_two_processes_match_one(backend: str = "gloo", **tolerance) -> None:
    """``tolerance``: assert_close's rtol and atol (its float32 defaults unless given)."""
    encoder, inputs = encoder_and_batch()
    loss, grads = loss_and_grads(encoder, inputs)  # one process, no process group: identity gather
    results = on_two_processes(worker, backend)
    for rank in (0, 1):
        rank_loss, rank_grads = results[rank]
        torch.testing.assert_close(rank_loss, loss, **tolerance)
        for ours, reference in zip(rank_grads, grads):
            torch.testing.assert_close(ours, reference, **tolerance)
    assert loss != 0 and any(g.abs().sum() > 0 for g in grads)
