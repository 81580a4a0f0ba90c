"""The loss across processes: its rows gathered from every process, gradients flowing back to each.

With ``mmd.scope=global`` every process computes the loss on the rows of the global batch rather
than on its own (``process``, the paper's per-GPU computation). The streams are gathered with the
autograd-aware ``all_gather``: its backward pass sums, into each process's own streams, the gradient
of every process's (identical) loss, i.e. W times the gradient of the global loss; the usual
averaging of parameter gradients over the W processes then gives exactly the single-process
gradient on the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

SCOPES = ("process", "global")


def gather_streams(streams: torch.Tensor) -> torch.Tensor:
    """Every process's ``[B, K, D, T]`` streams concatenated along B (rank order), differentiably.

    Identity without an initialised process group or with one process. Every process must pass the
    same shape (batch sizes are split evenly across processes).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return streams
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(streams.contiguous()), dim=0)
