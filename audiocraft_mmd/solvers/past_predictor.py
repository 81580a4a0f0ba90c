"""The ``mmd.condition`` / ``mmd.predictability`` / ``mmd.predictor`` config: validation, and the causal
predictor g of :mod:`audiocraft_mmd.losses.innovations` with its own optimiser, for the compression solver.

g trains only on its own Gaussian NLL, on detached streams, before each codec step (as the
independence adversary's critic does); the encoder's terms then use g frozen: the independence loss
on the innovations (``mmd.condition=past``) and ``mmd.predictability * NLL`` (codes the past predicts).
"""

from __future__ import annotations

import typing as tp

import flashy
import omegaconf
import torch

from ..errors import ConfigError
from .section_checks import check_trained_section
from ..losses import MMDIndependence, MMDIndependenceLoss
from ..losses.conditional_product import conditional_product_independence
from ..losses.innovations import PREDICTOR_KINDS, CausalPredictor, Innovations, innovations

# none: the loss on the aligned streams; past: on their innovations given the past; neighbours: the
# product of marginals formed among rows whose contexts (g's state) are nearest neighbours.
CONDITIONS = ("none", "past", "neighbours")
# Positive ints of mmd.predictor and what they mean, for the error messages.
_SIZES = {"hidden": "hidden width of the predictor", "receptive_field": "past aligned steps it reads",
          "steps": "predictor updates per step", "neighbours": "rows a row may take a codebook's vector from"}


def predictor_enabled(mmd_cfg: omegaconf.DictConfig) -> bool:
    """Whether the config trains a predictor: the loss given the past, or a predictability weight."""
    return mmd_cfg.get("condition", "none") != "none" or bool(mmd_cfg.get("predictability") or 0)


def validate_past_predictor_config(cfg: omegaconf.DictConfig) -> None:
    """Rejects bad ``mmd.condition``, ``mmd.predictability`` and ``mmd.predictor.*`` values, and the
    options the innovations do not support yet, naming the key."""
    mmd_cfg = cfg.mmd
    condition = mmd_cfg.get("condition", "none")
    if condition not in CONDITIONS:
        raise ConfigError(f"mmd.condition={condition!r} is not one of {CONDITIONS}.")
    predictability = mmd_cfg.get("predictability") or 0
    if isinstance(predictability, bool) or not isinstance(predictability, (int, float)) or predictability < 0:
        raise ConfigError(f"mmd.predictability must be a number >= 0 (0: off), got {predictability!r}.")
    if not predictor_enabled(mmd_cfg):
        return
    predictor = mmd_cfg.get("predictor")
    if predictor is None:
        raise ConfigError(f"mmd.condition={condition!r} or mmd.predictability > 0 needs the mmd.predictor section.")
    if predictor.get("kind") not in PREDICTOR_KINDS:
        raise ConfigError(f"mmd.predictor.kind={predictor.get('kind')!r} is not one of {PREDICTOR_KINDS}.")
    check_trained_section(predictor, "mmd.predictor", _SIZES)
    if condition == "neighbours":
        for key, value, needed in (("mmd.estimator", mmd_cfg.estimator, "permutation_debiased"),
                                   ("mmd.product", mmd_cfg.get("product", "pooled"), "pooled")):
            if value != needed:  # the conditional product is a debiased permutation estimate over all rows
                raise ConfigError(f"mmd.condition='neighbours' needs {key}={needed!r}, got {value!r}.")
    # Not supported with the predictor: each would need g to read rows it did not see in order
    # (gathered across processes, re-encoded later, kept from earlier batches) or a loss that is not
    # a kernel statistic on the streams.
    active = f"mmd.condition={condition!r}, mmd.predictability={predictability}"
    adversary = (mmd_cfg.get("adversary") or {}).get("weight") or 0
    bank = mmd_cfg.get("bank") or 0
    unsupported = [  # key, its value, whether that value is refused
        ("mmd.scope", mmd_cfg.get("scope", "process"), mmd_cfg.get("scope", "process") != "process"),
        ("mmd.macro_batch", mmd_cfg.get("macro_batch") or 0, bool(mmd_cfg.get("macro_batch"))),
        ("mmd.bank", bank, bank > 1),
        ("mmd.adversary.weight", adversary, bool(adversary)),
        ("mmd.estimator", mmd_cfg.estimator, mmd_cfg.estimator == "soft_mi"),
        # the steered weight reads the gradient of all the encoder's independence terms: the NLL's would mix in
        ("mmd.target_grad_ratio", mmd_cfg.get("target_grad_ratio"),
         mmd_cfg.get("target_grad_ratio") is not None and bool(predictability)),
        ("rvq.q_dropout", (cfg.get("rvq") or {}).get("q_dropout"), bool((cfg.get("rvq") or {}).get("q_dropout"))),
    ]
    for key, value, refused in unsupported:
        if refused:
            raise ConfigError(f"{active} does not support {key}={value!r} (the innovations need every step's "
                              "rows of this process, in order, from all codebooks, under a kernel estimator).")


class PastPredictor:
    """g, its optimiser and the two uses of a step: its own update, then the frozen innovations.

    Args:
        predictor: g.
        optimizer: Optimiser of g's parameters.
        delays: The loss's alignment (g reads the aligned streams).
        steps: g's updates per codec step.
        neighbours: Rows a row may take a codebook's vector from, in the conditional product.
    """

    def __init__(self, predictor: CausalPredictor, optimizer: torch.optim.Optimizer,
                 delays: tp.Sequence[int], steps: int = 1, neighbours: int = 8):
        self.predictor = predictor
        self.optimizer = optimizer
        self.delays = list(delays)
        self.steps = steps
        self.neighbours = neighbours
        flashy.distrib.broadcast_model(self.predictor)

    def train_predictor(self, streams: torch.Tensor) -> torch.Tensor:
        """``steps`` updates of g on its NLL of the detached ``streams`` ``[B, K, D, T]``; returns the
        NLL before the last update (detached)."""
        streams = streams.detach()
        for _ in range(self.steps):
            nll = innovations(streams, self.predictor, self.delays).nll
            self.optimizer.zero_grad()
            with flashy.distrib.eager_sync_model(self.predictor):
                nll.backward()
            self.optimizer.step()
        return nll.detach()

    def __call__(self, streams: torch.Tensor) -> Innovations:
        """Innovations and NLL under g frozen: differentiable w.r.t. ``streams`` only."""
        return innovations(streams, self.predictor, self.delays, frozen=True)

    def conditional_product(self, streams: torch.Tensor, loss: MMDIndependenceLoss,
                            generator: tp.Optional[torch.Generator] = None) -> MMDIndependence:
        """The loss's MMD² between the joint rows and their product among nearest contexts
        (:mod:`..losses.conditional_product`), with ``loss``'s bandwidths and clamp."""
        return conditional_product_independence(streams, self.predictor, self.delays, loss.bandwidths,
                                                loss.bandwidth_scale, self.neighbours, loss.clamp, generator)

    def state_dict(self) -> tp.Dict[str, tp.Any]:
        return {"predictor": self.predictor.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: tp.Mapping[str, tp.Any]) -> None:
        self.predictor.load_state_dict(state["predictor"])
        self.optimizer.load_state_dict(state["optimizer"])


def build_past_predictor(cfg: omegaconf.DictConfig, delays: tp.Sequence[int], dim: int) -> tp.Optional[PastPredictor]:
    """The predictor of ``cfg.mmd.predictor`` for streams of ``len(delays)`` codebooks of dimension
    ``dim``, or None when ``mmd.condition=none`` and ``mmd.predictability=0``."""
    if not predictor_enabled(cfg.mmd):
        return None
    section = cfg.mmd.predictor
    predictor = CausalPredictor(len(delays), dim, hidden=int(section.hidden),
                                receptive_field=int(section.receptive_field), kind=str(section.kind))
    beta1, beta2 = (float(b) for b in section.betas)  # two values (validate_past_predictor_config)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=float(section.lr), betas=(beta1, beta2))
    return PastPredictor(predictor, optimizer, delays, steps=int(section.steps), neighbours=int(section.neighbours))
