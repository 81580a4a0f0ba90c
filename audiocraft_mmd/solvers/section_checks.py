"""Checks shared by the config sections of modules the solver trains beside the codec with their own
Adam (the independence adversary's critic, the past predictor): sizes, learning rate, betas."""

import typing as tp

import omegaconf

from ..errors import ConfigError


def check_trained_section(section: omegaconf.DictConfig, prefix: str, sizes: tp.Dict[str, str]) -> None:
    """Rejects, naming ``<prefix>.<key>``, a size of ``sizes`` (key -> meaning) that is not an int >= 1,
    an ``lr`` that is not > 0 and ``betas`` that are not two values in [0, 1)."""
    for key, meaning in sizes.items():
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{prefix}.{key} ({meaning}) must be an int >= 1, got {value!r}.")
    lr = section.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"{prefix}.lr must be > 0, got {lr!r}.")
    betas = section.get("betas")
    if betas is None or len(betas) != 2 or not all(0 <= float(b) < 1 for b in betas):
        raise ConfigError(f"{prefix}.betas must be two values in [0, 1), got {betas!r}.")
