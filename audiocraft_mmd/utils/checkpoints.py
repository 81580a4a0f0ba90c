"""Loading what an XP trained: a solver checkpoint, or the codec in it, from whatever a user names.

A reference is ``//sig/SIG``, an XP folder, a ``checkpoint.th``, an exported model (a file, or a
folder holding ``compression_state_dict.bin``), ``//pretrained/NAME`` (AudioCraft's own), or an
``encodec`` package model (``encodec:...``).
"""

from __future__ import annotations

from pathlib import Path
import typing as tp

import omegaconf
import torch

from ..errors import ConfigError

EXPORTED_CODEC = "compression_state_dict.bin"


class CheckpointError(ConfigError):
    """A reference that resolves to no checkpoint, or to a file that is not one; the message says which."""


def load_solver_checkpoint(reference: str) -> dict:
    """A solver checkpoint from ``//sig/SIG``, an XP folder or a file (weights-only load).

    Raises:
        CheckpointError: If the reference resolves to no file, or to a file without ``xp.cfg`` / ``best_state``.
    """
    from audiocraft.utils import checkpoint
    path = checkpoint.resolve_checkpoint_path(str(reference), use_fsdp=False)
    if path is None:
        raise CheckpointError(f"{reference} does not resolve to a checkpoint file.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "xp.cfg" not in state or not state.get("best_state"):
        raise CheckpointError(f"{path} is not a solver checkpoint (no xp.cfg / best_state).")
    return state


def resolved_xp_config(state: tp.Mapping[str, tp.Any]) -> omegaconf.DictConfig:
    """A copy of a solver checkpoint's ``xp.cfg`` with its interpolations resolved.

    Raises:
        CheckpointError: If ``xp.cfg`` is not a mapping.
    """
    cfg = omegaconf.OmegaConf.create(omegaconf.OmegaConf.to_container(state["xp.cfg"], resolve=True))
    if not isinstance(cfg, omegaconf.DictConfig):
        raise CheckpointError(f"xp.cfg of this checkpoint is a {type(cfg).__name__}, not a mapping.")
    return cfg


def load_compression_model(reference: str, device: str = "cpu",
                           bandwidth: tp.Optional[float] = None) -> tp.Tuple[tp.Any, tp.Any]:
    """A codec in eval mode and the config it was trained with (None where there is none).

    Args:
        reference: See the module docstring.
        device: Where the model goes.
        bandwidth: kbit/s of an ``encodec`` package model; an error for any other reference.

    Raises:
        CheckpointError: If nothing loadable is found, naming what was tried.
    """
    from audiocraft.models import CompressionModel
    from audiocraft.solvers.compression import CompressionSolver
    from audiocraft.utils import checkpoint
    from ..quantization.encodec_package import is_encodec_reference, load_encodec_package

    if is_encodec_reference(reference):
        try:
            model = load_encodec_package(reference, bandwidth)
        except ValueError as error:
            raise CheckpointError(str(error)) from error
        return model.to(device).eval(), None
    if bandwidth is not None:
        raise CheckpointError(f"--bandwidth applies to encodec package models (encodec:...), not to {reference!r}")
    if reference.startswith("//pretrained/"):
        return CompressionSolver.model_from_checkpoint(reference, device).eval(), None
    try:
        path = checkpoint.resolve_checkpoint_path(reference, use_fsdp=False)
    except Exception as error:  # e.g. no Dora folder configured for a //sig/
        raise CheckpointError(f"cannot resolve checkpoint {reference!r}: {error}") from error
    exported = Path(reference) / EXPORTED_CODEC
    if path is None and exported.exists():
        path = exported
    if path is None:
        hint = "no such XP (check AUDIOCRAFT_DORA_DIR)" if reference.startswith("//sig/") else "no such file or folder"
        raise CheckpointError(f"unknown checkpoint {reference!r}: {hint}; expected a //sig/SIG, a solver checkpoint "
                              "(checkpoint.th or its XP folder) or an exported model (file or folder)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(state, dict) or "best_state" not in state:
        raise CheckpointError(f"{path} is not an AudioCraft compression checkpoint (no 'best_state')")
    if state.get("exported"):
        model = CompressionModel.get_pretrained(str(path), device=device)
        return model.eval(), omegaconf.OmegaConf.create(state["xp.cfg"]) if "xp.cfg" in state else None
    return CompressionSolver.model_from_checkpoint(path, device=device).eval(), state.get("xp.cfg")
