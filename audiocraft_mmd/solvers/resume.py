"""Resuming an XP whose model config changed is refused, with the changed keys named; so is a warm start
(``continue_from``) whose weights do not fit the model.

Dora derives an XP's signature from its command-line overrides, not from the yaml defaults, so a
default edited between two runs of the same command resumes the old checkpoint with a new config:
at best a shape mismatch deep inside ``load_state_dict``, at worst (an activation, a norm, a sample
rate) a model that loads and silently is not the one trained.
"""

from __future__ import annotations

import typing as tp

import omegaconf
import torch

from ..errors import ConfigError

# Config sections and keys that define the compression model a checkpoint holds.
MODEL_CONFIG_KEYS = ("compression_model", "sample_rate", "channels", "encodec", "seanet", "rvq", "grouped",
                     "spectral_encoder", "upsampling")
# Keys inside them that only choose the initial weights: a resumed model loads its weights, so they may differ
# (and a checkpoint written before such a key existed still resumes).
INIT_ONLY_KEYS = ("upsampling.transposed_init",)
# Keys added after checkpoints were written, with the value that builds the model those checkpoints hold: a
# checkpoint without the key resumes while the key keeps that value.
ADDED_KEYS = {"upsampling.transposed_average": False}


def _flatten(node: tp.Any, prefix: str) -> tp.Dict[str, tp.Any]:
    if isinstance(node, dict):
        flat: tp.Dict[str, tp.Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}.{key}"))
        return flat
    return {prefix: node}


def _resolved(cfg: omegaconf.DictConfig) -> tp.Dict[tp.Any, tp.Any]:
    container = omegaconf.OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return container


def model_config_changes(saved: omegaconf.DictConfig, current: omegaconf.DictConfig,
                         keys: tp.Sequence[str] = MODEL_CONFIG_KEYS) -> tp.List[tp.Tuple[str, tp.Any, tp.Any]]:
    """``(key, saved value, current value)`` for every model-defining key that differs."""
    changes = []
    for section in keys:
        old = _flatten(_resolved(saved).get(section), section)
        new = _flatten(_resolved(current).get(section), section)
        for key in sorted((old.keys() | new.keys()) - set(INIT_ONLY_KEYS)):
            saved_value = old.get(key, ADDED_KEYS.get(key, "<missing>"))
            if saved_value != new.get(key, "<missing>"):
                changes.append((key, saved_value, new.get(key, "<missing>")))
    return changes


def check_resumable(saved: tp.Optional[omegaconf.DictConfig], current: omegaconf.DictConfig,
                    checkpoint: str) -> None:
    """Raises :class:`ConfigError` if ``current`` would not rebuild the model ``saved`` describes."""
    if saved is None:
        return
    changes = model_config_changes(saved, current)
    if changes:
        listed = "\n".join(f"  {key}: {old!r} in the checkpoint, {new!r} now" for key, old, new in changes)
        raise ConfigError(
            f"Refusing to resume {checkpoint}: the model config changed since it was written "
            f"(an edited yaml default keeps the XP signature):\n{listed}\n"
            "Restore those values, or start a new XP (e.g. add label=<name>), optionally initialised "
            "from this one with continue_from=<its //sig/SIG>.")


def check_warm_start(saved_model: tp.Optional[tp.Mapping[str, tp.Any]], model: torch.nn.Module, source: str,
                     saved_cfg: tp.Callable[[], tp.Optional[omegaconf.DictConfig]],
                     current: omegaconf.DictConfig) -> None:
    """Raises :class:`ConfigError` if the weights ``continue_from=source`` brings do not fit ``model``: a
    warm start needs the same modules, and AudioCraft's own error is a bare ``KeyError``. ``saved_cfg``
    (read only on a mismatch) gives the source XP's config, to name the keys that differ."""
    if saved_model is None:
        return
    own = model.state_dict()
    missing, unexpected = sorted(own.keys() - saved_model.keys()), sorted(saved_model.keys() - own.keys())
    reshaped = sorted(key for key in own.keys() & saved_model.keys()
                      if tuple(own[key].shape) != tuple(saved_model[key].shape))
    if not (missing or unexpected or reshaped):
        return
    found = [f"  {label}: {', '.join(keys[:4])}{' …' if len(keys) > 4 else ''} ({len(keys)})"
             for label, keys in (("not in the checkpoint", missing), ("only in the checkpoint", unexpected),
                                 ("another shape", reshaped)) if keys]
    source_cfg = saved_cfg()
    changes = model_config_changes(source_cfg, current) if source_cfg is not None else []
    hint = ("\n".join(f"  {key}: {old!r} there, {new!r} here" for key, old, new in changes) if changes
            else "  (its config is not in the checkpoint: compare encodec.autoencoder, upsampling.stages, seanet.* "
                 "and rvq.* with the XP it comes from)")
    raise ConfigError(f"continue_from={source}: its model's weights do not fit this config's model:\n"
                      + "\n".join(found) + f"\nThe model-defining keys that differ:\n{hint}\n"
                      "Give them the values of the XP it comes from.")
