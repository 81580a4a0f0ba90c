"""The ``mmd.adversary`` config section: validation and construction of the independence adversary
(:mod:`audiocraft_mmd.losses.adversary`) for the compression solver."""

from __future__ import annotations

import typing as tp

import omegaconf
import torch

from ..errors import ConfigError
from .section_checks import check_trained_section
from ..losses import MMDIndependenceLoss
from ..losses.adversary import IndependenceAdversary, IndependenceCritic

# Positive ints of the section and what they mean, for the error messages.
_SIZES = {"hidden": "hidden width of the critic", "features": "features per codebook",
          "steps": "critic updates per step"}


def validate_adversary_config(mmd_cfg: omegaconf.DictConfig) -> None:
    """Rejects bad ``mmd.adversary.*`` values (the section is optional: absent means off)."""
    adv = mmd_cfg.get("adversary")
    if adv is None:
        return
    weight = adv.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
        raise ConfigError(f"mmd.adversary.weight must be a number >= 0 (0: off), got {weight!r}.")
    if not weight:
        return
    check_trained_section(adv, "mmd.adversary", _SIZES)


def build_adversary(cfg: omegaconf.DictConfig, loss: MMDIndependenceLoss, num_codebooks: int,
                    dim: int) -> tp.Optional[IndependenceAdversary]:
    """The adversary of ``cfg.mmd.adversary`` on the loss's options, or None when off (weight 0)."""
    adv = cfg.mmd.get("adversary")
    if adv is None or not adv.weight:
        return None
    critic = IndependenceCritic(num_codebooks, dim, hidden=int(adv.hidden), features=int(adv.features),
                                spectral=bool(adv.spectral_norm))
    beta1, beta2 = (float(b) for b in adv.betas)  # two values (validate_adversary_config)
    optimizer = torch.optim.Adam(critic.parameters(), lr=float(adv.lr), betas=(beta1, beta2))
    return IndependenceAdversary(critic, loss, optimizer, steps=int(adv.steps))
