"""The independence loss's weight λ over training: constant (the paper's), delayed and ramped, or
adapted to a target share of the encoder's gradient.

Measured (docs/research/RESULTS.md, docs/research/INDEPENDENCE.md): from scratch the loss acts mostly
while k-means-initialised codebooks are still collapsed, where a strong λ ruins training; once they
have spread out, a fixed λ's gradient fades to a few per cent of the reconstruction's. Fine-tuning a
trained codec with λ whose gradient is about as large as the reconstruction's (grad ratio ≈ 1) halved
the codes' MI. In one run:

- ``mmd.warmup`` updates at λ = 0 (the codebooks initialise and spread), then ``mmd.ramp`` updates of
  a linear ramp to the full weight;
- ``mmd.target_grad_ratio`` r: the full weight is adapted so that ``|∇(λ·L_inde)| ≈ r·|∇(other losses)|``
  at the encoder output, from exponential moving averages of both norms per update (``mmd.weight``
  is its starting value). The norms are those the solver measures for ``mmd_grad_ratio``.

The state (the adapted weight and the averages) is checkpointed, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
import typing as tp

# Per-update decay of the gradient-norm averages: about 10 updates of memory, short enough to follow
# the ratio's fall as the codebooks spread (3.8 -> 1.2 over 200 updates of a λ = 3000 fine-tune,
# docs/research/INDEPENDENCE.md).
NORM_EMA_DECAY = 0.9


class MMDWeight:
    """λ at each training update.

    Args:
        weight: The full weight (with ``target_grad_ratio``: its starting value), >= 0.
        warmup: Updates at λ = 0 before the ramp.
        ramp: Updates of the linear ramp from 0 to the full weight after the warmup (0: a step).
        target_grad_ratio: None (λ stays ``weight``), or the share r > 0 of the other losses' gradient
            norm that λ·L_inde's gradient norm is steered to.
    """

    def __init__(self, weight: float, warmup: int = 0, ramp: int = 0,
                 target_grad_ratio: tp.Optional[float] = None):
        self.weight = float(weight)
        self.warmup = int(warmup)
        self.ramp = int(ramp)
        self.target_grad_ratio = None if target_grad_ratio is None else float(target_grad_ratio)
        self.loss_norm: tp.Optional[float] = None   # EMA of |∇L_inde| (unweighted)
        self.other_norm: tp.Optional[float] = None  # EMA of |∇(other losses)|

    def ramp_factor(self, update: int) -> float:
        """0 during the warmup, then linear up to 1 over the ramp."""
        if update < self.warmup:
            return 0.0
        if self.ramp <= 0:
            return 1.0
        return min(1.0, (update - self.warmup + 1) / self.ramp)

    def full_weight(self) -> float:
        """``weight``, or the adapted weight once gradient norms have been observed."""
        if self.target_grad_ratio is None or not self.loss_norm or self.other_norm is None:
            return self.weight
        return self.target_grad_ratio * self.other_norm / self.loss_norm

    def __call__(self, update: int) -> float:
        """λ at training update ``update`` (0-based, counted over the whole run)."""
        return self.ramp_factor(update) * self.full_weight()

    def observe(self, weighted_grad_norm: float, other_grad_norm: float, weight: float) -> None:
        """Feeds one update's gradient norms at the encoder output (λ·L_inde's, with λ = ``weight`` > 0,
        and the other losses'); only the target mode uses them."""
        if self.target_grad_ratio is None or weight <= 0:
            return
        loss_norm, other_norm = weighted_grad_norm / weight, other_grad_norm
        if not (math.isfinite(loss_norm) and math.isfinite(other_norm)) or loss_norm <= 0:
            return  # a clamped (zero) loss or a dropped step says nothing about the ratio
        if self.loss_norm is None or self.other_norm is None:
            self.loss_norm, self.other_norm = loss_norm, other_norm
        else:
            self.loss_norm = NORM_EMA_DECAY * self.loss_norm + (1 - NORM_EMA_DECAY) * loss_norm
            self.other_norm = NORM_EMA_DECAY * self.other_norm + (1 - NORM_EMA_DECAY) * other_norm

    def state_dict(self) -> tp.Dict[str, tp.Optional[float]]:
        return {"loss_norm": self.loss_norm, "other_norm": self.other_norm}

    def load_state_dict(self, state: tp.Dict[str, tp.Optional[float]]) -> None:
        self.loss_norm, self.other_norm = state["loss_norm"], state["other_norm"]
