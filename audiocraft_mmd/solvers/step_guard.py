"""Training steps that cannot poison a run: a step whose gradients are not finite changes nothing.

One NaN in a gradient, applied by Adam, turns every weight it touches into NaN for good. A training
step has side effects besides the optimizer updates, and a non-finite step must undo those too:

- the EMA codebooks update their buffers during the forward pass, before any loss is known;
- AudioCraft's balancer keeps a running average of gradient norms (a closure in 1.3.0, so it is
  neither checkpointed nor restorable): one NaN norm makes every later balanced gradient NaN;
- adversaries step their own optimizers inside the generator's step.

:class:`NonFiniteStepGuard` checks the gradients of every optimizer it watches right before
``step()`` (a step pre-hook) and drops them all when any is NaN or infinite, so the optimizer skips
every parameter; at the end of the guarded step it restores the model's buffers and the registered
states if anything was dropped. :class:`StatefulAverager` replaces the balancer's closure with the
same running average as an object with ``state_dict``, which makes it both restorable here and
saved in checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import typing as tp

import torch
from torch import nn


class StatefulAverager:
    """Exponential moving average of a dict of metrics, like ``flashy.averager``, with a state dict.

    Args:
        beta: Decay of the running sums; 1 is a plain average.
    """

    def __init__(self, beta: float = 1.0):
        self.beta = beta
        self.total: tp.Dict[str, float] = {}
        self.fix: tp.Dict[str, float] = {}

    def __call__(self, metrics: tp.Mapping[str, tp.Any], weight: float = 1.0) -> tp.Dict[str, float]:
        for key, value in metrics.items():
            self.total[key] = self.total.get(key, 0.0) * self.beta + weight * float(value)
            self.fix[key] = self.fix.get(key, 0.0) * self.beta + weight
        return {key: total / self.fix[key] for key, total in self.total.items()}

    def state_dict(self) -> tp.Dict[str, tp.Dict[str, float]]:
        return {"total": dict(self.total), "fix": dict(self.fix)}

    def load_state_dict(self, state: tp.Mapping[str, tp.Mapping[str, float]]) -> None:
        self.total = dict(state["total"])
        self.fix = dict(state["fix"])


def all_finite(tensors: tp.Sequence[torch.Tensor]) -> bool:
    """True when no tensor holds a NaN or an infinity (one reduction per tensor, one sync)."""
    if not tensors:
        return True
    norms = torch._foreach_norm([t.detach().float() for t in tensors])
    return bool(torch.isfinite(torch.stack(norms)).all())


class NonFiniteStepGuard:
    """Makes training steps with non-finite gradients no-ops, and counts them.

    Args:
        model: The module whose buffers (e.g. EMA codebooks) are restored after a dropped step.
        optimizers: Optimizers whose gradients are checked before every ``step()``.
        states: Other objects with ``state_dict``/``load_state_dict`` changed during a step and
            restored after a dropped one (e.g. the balancer's :class:`StatefulAverager`).

    Example:
        >>> guard = NonFiniteStepGuard(model, [optimizer])
        >>> with guard.step():
        ...     loss.backward(); optimizer.step()
        >>> guard.skipped  # True if the gradients held a NaN or an inf; nothing changed then
    """

    def __init__(self, model: nn.Module, optimizers: tp.Iterable[torch.optim.Optimizer],
                 states: tp.Iterable[tp.Any] = ()):
        self.model = model
        self.states = list(states)
        self.skipped = False
        self.num_skipped = 0
        self._handles = [optimizer.register_step_pre_hook(self._drop_non_finite) for optimizer in optimizers]

    def _drop_non_finite(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if all_finite([p.grad for p in params]):
            return
        for param in params:
            param.grad = None  # torch optimizers skip parameters without a gradient
        self.skipped = True

    @contextlib.contextmanager
    def step(self) -> tp.Iterator["NonFiniteStepGuard"]:
        """Guards one training step: on exit, undoes its side effects if a gradient was not finite."""
        buffers = [buffer.detach().clone() for buffer in self.model.buffers()]
        states = [copy.deepcopy(state.state_dict()) for state in self.states]
        self.skipped = False
        yield self
        if self.skipped:
            self.num_skipped += 1
            with torch.no_grad():
                for buffer, saved in zip(self.model.buffers(), buffers):
                    buffer.copy_(saved)
            for state, saved in zip(self.states, states):
                state.load_state_dict(saved)

    def remove(self) -> None:
        """Detaches the guard from its optimizers."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
