"""Random number generators as checkpointable state sources (``state_dict`` / ``load_state_dict``).

A resumed run continues exactly the run it resumes only if every random draw after the checkpoint is
the same: the loss's own generator (row permutations) and the process-wide generators, which the
EMA codebooks use to re-seed dead codes and AudioCraft's datasets use to pick segments.
"""

from __future__ import annotations

import random
import typing as tp

import torch


class GeneratorState:
    """One ``torch.Generator``."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def state_dict(self) -> tp.Dict[str, torch.Tensor]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: tp.Mapping[str, torch.Tensor]) -> None:
        self.generator.set_state(state["state"])


class GlobalRNGState:
    """torch's default CPU generator and Python's ``random`` module, as seeded at start-up.

    Saved by rank 0 and restored on every rank, as they are all seeded alike at start-up.
    """

    def state_dict(self) -> tp.Dict[str, tp.Any]:
        version, internal, gauss = random.getstate()
        return {"torch": torch.get_rng_state(), "python": [version, list(internal), gauss]}

    def load_state_dict(self, state: tp.Mapping[str, tp.Any]) -> None:
        torch.set_rng_state(state["torch"])
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
