"""Evaluate-stage plugins: metrics computed on the evaluate split beside reconstruction quality.

The MMD compression solver runs the evaluate split once; each plugin named in
``evaluate.plugins`` sees every batch and returns its metrics at the end, which Dora records with
the stage's other metrics. Plugins register with :func:`register_evaluation_plugin` without touching
the solver: the codebook and dependence plugins in :mod:`.dependence_plugins`, audio quality in
:mod:`.quality_plugins`.
"""

from __future__ import annotations

from dataclasses import dataclass
import typing as tp

import torch

from ..quantization import CapturedStreams
from ..registry import Registry


@dataclass
class EvaluationBatch:
    """One evaluate batch as the plugins see it.

    Attributes:
        audio: Reference audio ``[B, C, T]``.
        reconstruction: Decoded audio ``[B, C, T]``.
        captured: Streams ``[B, K, D, T']`` and codes ``[B, K, T']`` of the forward pass.
    """
    audio: torch.Tensor
    reconstruction: torch.Tensor
    captured: CapturedStreams


class EvaluationPlugin:
    """Base class: accumulate with :meth:`update`, report with :meth:`compute`."""

    def __init__(self, solver: tp.Any):
        self.solver = solver

    def update(self, batch: EvaluationBatch) -> None:
        raise NotImplementedError

    def compute(self) -> tp.Dict[str, float]:
        raise NotImplementedError


EVALUATION_PLUGINS = Registry("evaluation plugin")
register_evaluation_plugin = EVALUATION_PLUGINS.register


def build_evaluation_plugins(names: tp.Iterable[str], solver: tp.Any) -> tp.Dict[str, EvaluationPlugin]:
    return {name: EVALUATION_PLUGINS.lookup(name)(solver) for name in names}
