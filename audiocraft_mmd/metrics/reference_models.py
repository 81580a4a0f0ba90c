"""AudioCraft's standard generation metrics (FAD, KLD, CLAP) from weights the user already has.

AudioCraft's MusicGen solver computes, when ``evaluate.metrics.<name>`` is true:

- ``fad``: Fréchet Audio Distance on VGGish embeddings, by running Google's
  ``frechet_audio_distance`` code (``metrics.fad.tf.bin``) with a TensorFlow Python
  (``$TF_PYTHON_EXE``) on the VGGish checkpoint ``metrics.fad.tf.model_path``;
- ``kld``: KL divergence of PaSST's AudioSet label distributions (``hear21passt`` package), whose
  weights ``hear21passt`` fetches through ``torch.hub`` unless they are in its cache;
- ``text_consistency``: CLAP text/audio similarity (``laion_clap`` package) with the checkpoint
  ``metrics.text_consistency.clap.model_path`` and ``roberta-base`` (tokenizer and text encoder,
  from the Hugging Face cache).

:func:`check_reference_metrics` runs before the solver is built: every file an enabled metric
needs must exist locally, else one :class:`ConfigError` names the config key and the missing file
(nothing is downloaded). ``metrics.kld.checkpoint`` is our key (beside ``passt``, whose entries
are AudioCraft's keyword arguments): the local PaSST weights,
linked into ``torch.hub``'s checkpoint cache under their original file name so that ``hear21passt``
finds them there instead of downloading.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
import typing as tp

from ..errors import ConfigError

# The file names hear21passt's download URLs end with, per pretrained_length (torch.hub caches by name).
PASST_FILES = {None: "passt-s-f128-p16-s10-ap.476-swa.pt", 10: "passt-s-f128-p16-s10-ap.476-swa.pt",
               20: "passt-s-f128-20sec-p16-s10-ap.474-swa.pt", 30: "passt-s-f128-30sec-p16-s10-ap.473-swa.pt"}


def _resolve(path: tp.Any, key: str) -> Path:
    """A configured path with AudioCraft's ``//reference`` prefix resolved; the key named if unset."""
    if path is None or str(path) in ("", "null", "None"):
        raise ConfigError(f"{key} is not set: give the local path of the file (no download is attempted)")
    path = str(path)
    if path.startswith("//reference"):
        from audiocraft.environment import AudioCraftEnvironment
        reference_dir = AudioCraftEnvironment.get_reference_dir()
        path = str(reference_dir) + path[len("//reference"):]
    return Path(path).expanduser()


def _existing(path: tp.Any, key: str, what: str) -> Path:
    resolved = _resolve(path, key)
    if not resolved.exists():
        raise ConfigError(f"{key}: {what} not found at {resolved} (set {key} to a local copy; nothing is downloaded)")
    return resolved


def _package(module: str, install: str, metric: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"evaluate.metrics.{metric} needs the {module} package: {install}")


def check_fad(cfg: tp.Any) -> None:
    tf_cfg = cfg.metrics.fad.tf
    _existing(tf_cfg.model_path, "metrics.fad.tf.model_path", "the VGGish checkpoint")
    _existing(tf_cfg.bin, "metrics.fad.tf.bin", "the frechet_audio_distance code folder")
    python = os.environ.get("TF_PYTHON_EXE")
    if not python or not Path(python).exists():
        raise ConfigError("evaluate.metrics.fad needs TF_PYTHON_EXE: the python of an environment with TensorFlow "
                          f"and frechet_audio_distance's dependencies (now {python!r})")


def check_kld(cfg: tp.Any) -> Path:
    """Checks PaSST and links its local weights into torch.hub's cache; returns the cached path."""
    import torch
    _package("hear21passt", "pip install 'git+https://github.com/kkoutini/passt_hear21@0.0.19#egg=hear21passt'",
             "kld")
    passt = cfg.metrics.kld.get("passt") or {}
    length = passt.get("pretrained_length")
    name = PASST_FILES.get(None if length is None else int(length))
    if name is None:
        raise ConfigError(f"metrics.kld.passt.pretrained_length={length} is not one of 10, 20, 30")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / name
    if cached.exists():
        return cached
    source = _existing(cfg.metrics.kld.get("checkpoint"), "metrics.kld.checkpoint", f"the PaSST weights ({name})")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.symlink_to(source.resolve())
    return cached


def check_clap(cfg: tp.Any) -> None:
    _package("laion_clap", "pip install laion_clap", "text_consistency")
    _existing(cfg.metrics.text_consistency.clap.model_path, "metrics.text_consistency.clap.model_path",
              "the CLAP checkpoint")
    from huggingface_hub import try_to_load_from_cache
    # CLAP's text branch loads roberta-base (tokenizer and weights) by name from the Hugging Face cache.
    cached = {name: isinstance(try_to_load_from_cache("roberta-base", name), str)
              for name in ("vocab.json", "merges.txt", "config.json", "model.safetensors", "pytorch_model.bin")}
    missing = [name for name in ("vocab.json", "merges.txt", "config.json") if not cached[name]]
    if not (cached["model.safetensors"] or cached["pytorch_model.bin"]):
        missing.append("model.safetensors (or pytorch_model.bin)")
    if missing:
        raise ConfigError("evaluate.metrics.text_consistency needs roberta-base in the Hugging Face cache (HF_HOME); "
                          f"missing {', '.join(missing)}: copy it there from a machine that has it; nothing is "
                          "downloaded")


CHECKS = {"fad": check_fad, "kld": check_kld, "text_consistency": check_clap}


def check_reference_metrics(cfg: tp.Any) -> tp.List[str]:
    """Checks the local files of every enabled ``evaluate.metrics`` among fad, kld, text_consistency.

    Returns:
        The names of the metrics checked.

    Raises:
        ConfigError: Naming the key and the missing file, package or environment variable.
    """
    enabled = [name for name in CHECKS if cfg.evaluate.metrics.get(name)]
    if enabled and cfg.get("metrics") is None:
        raise ConfigError(f"evaluate.metrics.{enabled[0]}=true but the config has no metrics section")
    for name in enabled:
        CHECKS[name](cfg)
    return enabled
