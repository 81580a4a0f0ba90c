"""``mmd.scope_check``: in a multi-process run with ``mmd.scope=global``, checks once, on the real
model and the real first training batch, that the loss and its encoder gradient equal a single
process's on the same global batch.

Every process encodes its own batch, gathers the streams (:func:`..losses.distributed.gather_streams`)
and differentiates the loss, then averages the encoder gradients over processes (what
``flashy.distrib.sync_model`` does before the optimizer step). Each process also gathers the audio
of the global batch and computes the loss and gradient on it alone, as one process would. Both use
the same estimator seed and frozen codebooks (no EMA step, no quantizer dropout), so any difference
is float rounding, or a bug in how rows and gradients cross processes. The training step that
follows is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
import typing as tp

import torch
from torch import nn
import torch.distributed as dist

from ..losses.distributed import gather_streams
from ..losses.mmd import MMDIndependenceLoss, mmd_independence
from ..quantization import capture_streams, frozen_codebooks

if tp.TYPE_CHECKING:
    from audiocraft.models.encodec import EncodecModel

# float32 sums taken in another order (a batch of B/W rows convolved, then gathered, against a
# batch of B rows): relative differences are ~1e-6; a wrong gather or gradient scaling is O(1).
TOLERANCE = 1e-4


@dataclass
class ScopeCheck:
    """Attributes:
        loss: The single-process loss on the global batch.
        loss_error: |distributed loss - single-process loss| / max(|single-process loss|, 1e-12).
        grad_error: max |distributed grad - single-process grad| / max |single-process grad|, over
            the encoder's parameters.
        world_size: Processes in the run.
    """
    loss: float
    loss_error: float
    grad_error: float
    world_size: int

    @property
    def passed(self) -> bool:
        return self.loss_error <= TOLERANCE and self.grad_error <= TOLERANCE

    def metrics(self) -> tp.Dict[str, float]:
        return {"scope_check_loss": self.loss, "scope_check_loss_error": self.loss_error,
                "scope_check_grad_error": self.grad_error, "scope_check_world_size": float(self.world_size)}


def _encoded_streams(model: EncodecModel, source: str, audio: torch.Tensor) -> torch.Tensor:
    with capture_streams(model, source) as captured:
        audio, _ = model.preprocess(audio)
        model.quantizer(model.encoder(audio), model.frame_rate)
    return captured.streams


def check_global_scope(model: nn.Module, source: str, loss: MMDIndependenceLoss, batch: torch.Tensor,
                       seed: int = 0) -> ScopeCheck:
    """Compares the gathered (``mmd.scope=global``) loss and gradient with one process's on the global batch.

    Args:
        model: The compression model (an EnCodec), identical on every process.
        source: ``mmd.source``, the streams the loss reads.
        loss: The loss (delays, bandwidths, estimator, ...), on the model's active codebooks.
        batch: This process's training batch ``[B/W, C, T]``; every process passes the same shape.
        seed: Seed of the estimator's random draws, the same on both sides.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        raise RuntimeError("mmd.scope_check needs a multi-process run (torch.distributed initialised, 2+ processes)")
    world_size = dist.get_world_size()
    codec = tp.cast("EncodecModel", model)  # nn.Module's __getattr__ types its submodules Tensor | Module
    params = [param for param in codec.encoder.parameters() if param.requires_grad]
    pieces = [torch.empty_like(batch) for _ in range(world_size)]
    dist.all_gather(pieces, batch.contiguous())

    def loss_and_grads(audio: torch.Tensor, gathered: bool) -> tp.Tuple[torch.Tensor, tp.List[torch.Tensor]]:
        streams = _encoded_streams(codec, source, audio)
        rows = gather_streams(streams) if gathered else streams
        estimate = mmd_independence(rows, clamp=False, generator=torch.Generator().manual_seed(seed),
                                    **loss.first_codebooks(rows.shape[1]).options()).estimate
        return estimate.detach(), list(torch.autograd.grad(estimate, params))

    with frozen_codebooks(model):
        distributed_loss, distributed_grads = loss_and_grads(batch, gathered=True)
        single_loss, single_grads = loss_and_grads(torch.cat(pieces), gathered=False)
    for grad in distributed_grads:
        dist.all_reduce(grad)
        grad /= world_size
    grad_error = max((ours - ref).abs().max().item() for ours, ref in zip(distributed_grads, single_grads))
    grad_scale = max(ref.abs().max().item() for ref in single_grads)
    return ScopeCheck(
        loss=single_loss.item(),
        loss_error=(distributed_loss - single_loss).abs().item() / max(single_loss.abs().item(), 1e-12),
        grad_error=grad_error / max(grad_scale, 1e-12), world_size=world_size)
