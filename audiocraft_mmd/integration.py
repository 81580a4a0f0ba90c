"""The one place where audiocraft_mmd reaches into AudioCraft 1.3.0 internals.

AudioCraft 1.3.0 has no plugin registries and its wheel ships no config tree, so an extension has
to adjust a few things for its own solvers, patterns and checkpoints to work everywhere AudioCraft
looks them up. Everything of that kind lives here, and `install()` applies all of it:

- **Solver, loss, autoencoder, pattern, quantizer and LM builders.** `audiocraft.solvers.builders`'
  `get_solver` and `get_loss`, and `audiocraft.models.builders`' `get_encodec_autoencoder`,
  `get_codebooks_pattern_provider` and `get_quantizer` map names to classes with literal dicts. They
  are wrapped so that names in the registries of :mod:`audiocraft_mmd.registry` (``SOLVERS``,
  ``LOSSES``, ``AUTOENCODERS``, ``PATTERNS``, ``QUANTIZERS``) resolve first; other names fall through
  to AudioCraft, pattern names go through the checks of :mod:`audiocraft_mmd.patterns`.
  ``get_lm_model`` builds our :class:`~audiocraft_mmd.models.depth_lm.DepthLM` for
  ``codebooks_pattern.modeling=depth``.
- **`audiocraft.train`.** AudioCraft resolves ``//sig/SIG`` checkpoint references with
  ``from audiocraft import train`` to find Dora's folder; that module cannot import without
  AudioCraft's own config tree, so the name is aliased to :mod:`audiocraft_mmd.train`.
- **Team config.** ``AUDIOCRAFT_CONFIG`` points at our ``config/teams/default.yaml`` unless the user
  set it, so `AudioCraftEnvironment` finds a cluster config (and Dora a folder).
- **Checkpoints under torch's ``weights_only`` default.** AudioCraft checkpoints hold the XP's
  OmegaConf config; its classes are allow-listed so they load without a full unpickle.
- **Sampling.** ``audiocraft.utils.utils.sample_top_k`` clips ``k`` to the vocabulary size, so that
  MusicGen's default ``top_k=250`` works with codecs of fewer entries.
- **ffmpeg.** AudioCraft's ``audio_write`` pipes every format through an ``ffmpeg`` binary on PATH; when
  there is none, the static binary shipped by ``imageio-ffmpeg`` is put on PATH as ``ffmpeg``.
- **Every process.** Patches of AudioCraft modules are applied when those modules are imported
  (post-import hooks), so importing :mod:`audiocraft_mmd` stays cheap; the environment variables
  are inherited by child processes. Forked children inherit the patches, forkserver children
  preload :mod:`audiocraft_mmd`, and spawned workers import it through the functions they unpickle:
  AudioCraft's data loaders get our ``worker_init_fn``, evaluation workers run our functions.
"""

from __future__ import annotations

import collections
import functools
import importlib.abc
import importlib.util
import logging
import multiprocessing
import os
from pathlib import Path
import shutil
import sys
import typing as tp

from .utils.paths import CONFIG_DIR, cache_dir
from .registry import AUTOENCODERS, LOSSES, QUANTIZERS, SOLVERS

logger = logging.getLogger(__name__)




def _import_solvers() -> None:
    # Our solver modules register themselves on import; imported lazily because they import
    # all of AudioCraft (several seconds).
    from . import solvers  # noqa: F401


def _patch_solver_builder(builders: tp.Any) -> None:
    original = builders.get_solver

    @functools.wraps(original)
    def get_solver(cfg):
        _import_solvers()
        if cfg.solver in SOLVERS:
            return SOLVERS[cfg.solver](cfg)
        return original(cfg)

    builders.get_solver = get_solver
    solvers_pkg: tp.Any = sys.modules.get("audiocraft.solvers")  # a module: its get_solver is patched too
    if solvers_pkg is not None and getattr(solvers_pkg, "get_solver", None) is original:
        solvers_pkg.get_solver = get_solver

    original_loader = builders.get_loader

    @functools.wraps(original_loader)
    def get_loader(*args, **kwargs):
        kwargs.setdefault("worker_init_fn", worker_init)
        return original_loader(*args, **kwargs)

    builders.get_loader = get_loader

    original_loss = builders.get_loss

    @functools.wraps(original_loss)
    def get_loss(loss_name, cfg):
        from .losses import log_mel  # noqa: F401  (registers "logmel")
        if loss_name not in LOSSES:
            return original_loss(loss_name, cfg)
        return _build_from_section(LOSSES[loss_name], cfg, loss_name, f"losses.{loss_name}",
                                   "see config/solver/compression/default.yaml")

    builders.get_loss = get_loss


def _build_from_section(build: tp.Callable[..., tp.Any], cfg: tp.Any, name: str, chosen_by: str, hint: str,
                        **kwargs: tp.Any) -> tp.Any:
    """``build(**kwargs, **cfg.<name>)`` for a registry entry; a ConfigError naming the section when it is
    missing (``chosen_by`` is the key that chose the entry) or when ``build`` refuses its keys."""
    from audiocraft.utils.utils import dict_from_config
    from .errors import ConfigError
    section = cfg.get(name)
    if section is None:
        raise ConfigError(f"{chosen_by} needs a `{name}:` config section ({hint})")
    try:
        return build(**kwargs, **dict_from_config(section))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name}: {error}") from error


def worker_init(worker_id: int) -> None:
    """Data-loader ``worker_init_fn``: unpickling it imports (so installs) this package in the worker."""
    install()


def _patch_pattern_builder(builders: tp.Any) -> None:
    original = builders.get_codebooks_pattern_provider

    @functools.wraps(original)
    def get_codebooks_pattern_provider(n_q, cfg):
        # Ours and AudioCraft's names, with errors for unknown names and unread arguments. Every
        # LM AudioCraft builds (training, `load_lm_model`, `MusicGen.get_pretrained`) comes here.
        from .patterns import build_pattern_provider
        return build_pattern_provider(n_q, cfg)

    builders.get_codebooks_pattern_provider = get_codebooks_pattern_provider


def _patch_quantizer_builder(builders: tp.Any) -> None:
    original = builders.get_quantizer

    @functools.wraps(original)
    def get_quantizer(quantizer, cfg, dimension):
        from .quantization import grouped  # noqa: F401  (registers our quantizers; imports AudioCraft)
        if quantizer not in QUANTIZERS:
            return original(quantizer, cfg, dimension)
        return _build_from_section(QUANTIZERS[quantizer], cfg, quantizer, f"encodec.quantizer={quantizer!r}",
                                   "e.g. model=encodec/small_grouped", dimension=dimension)

    builders.get_quantizer = get_quantizer


def _patch_lm_builder(builders: tp.Any) -> None:
    original = builders.get_lm_model

    @functools.wraps(original)
    def get_lm_model(cfg):
        # `codebooks_pattern.modeling=depth` builds our DepthLM (a temporal LMModel plus a depth
        # transformer) with the rest of AudioCraft's builder unchanged: its conditioners, fuser,
        # CFG and transformer arguments. AudioCraft picks the class from a module-level name, as it
        # does for MAGNeT; that name is swapped for this one call.
        if cfg.get("lm_model") != "transformer_lm" or cfg.codebooks_pattern.get("modeling") != "depth":
            return original(cfg)
        from .models.depth_lm import DepthLM
        lm_class, builders.LMModel = builders.LMModel, DepthLM
        try:
            return original(cfg)
        finally:
            builders.LMModel = lm_class

    builders.get_lm_model = get_lm_model


def _patch_autoencoder_builder(builders: tp.Any) -> None:
    original = builders.get_encodec_autoencoder

    @functools.wraps(original)
    def get_encodec_autoencoder(encoder_name, cfg):
        from .models import autoencoders  # noqa: F401  (registers ours)
        if encoder_name not in AUTOENCODERS:
            return original(encoder_name, cfg)
        return AUTOENCODERS[encoder_name](cfg)

    builders.get_encodec_autoencoder = get_encodec_autoencoder


def _patch_model_builders(builders: tp.Any) -> None:
    _patch_autoencoder_builder(builders)
    _patch_pattern_builder(builders)
    _patch_quantizer_builder(builders)
    _patch_lm_builder(builders)


def _patch_top_k(utils: tp.Any) -> None:
    original = utils.sample_top_k

    @functools.wraps(original)
    def sample_top_k(probs, k: int):
        # MusicGen's default top_k (250) exceeds small codebooks, where torch.topk fails.
        return original(probs, k=min(int(k), probs.shape[-1]))

    utils.sample_top_k = sample_top_k


_POST_IMPORT_PATCHES: tp.Dict[str, tp.Callable[[tp.Any], None]] = {
    "audiocraft.solvers.builders": _patch_solver_builder,
    "audiocraft.models.builders": _patch_model_builders,
    "audiocraft.utils.utils": _patch_top_k,
}
_ALIASES = {"audiocraft.train": "audiocraft_mmd.train"}


class _AliasLoader(importlib.abc.Loader):
    """Makes `import audiocraft.train` return `audiocraft_mmd.train`."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then the module's patch."""

    def __init__(self, loader: importlib.abc.Loader, patch: tp.Callable[[tp.Any], None]):
        self.loader = loader
        self.patch = patch

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.patch(module)


class _AudioCraftFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname in _ALIASES:
            return importlib.util.spec_from_loader(fullname, _AliasLoader(_ALIASES[fullname]))
        if fullname not in _POST_IMPORT_PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, _POST_IMPORT_PATCHES[fullname])
                return spec
        return None


def _allow_config_in_checkpoints() -> None:
    import omegaconf
    import torch

    torch.serialization.add_safe_globals([
        omegaconf.DictConfig, omegaconf.ListConfig,
        omegaconf.base.ContainerMetadata, omegaconf.base.Metadata,
        omegaconf.nodes.AnyNode, omegaconf.nodes.StringNode, omegaconf.nodes.IntegerNode,
        omegaconf.nodes.FloatNode, omegaconf.nodes.BooleanNode, omegaconf.nodes.BytesNode,
        omegaconf.nodes.PathNode, tp.Any, collections.defaultdict, dict, list, int, float, str,
        bool, tuple, set,
    ])


def _expose_ffmpeg() -> None:
    if shutil.which("ffmpeg") is not None:
        return
    try:
        import imageio_ffmpeg
    except ImportError:
        return  # audio writing will fail with AudioCraft's own error; README says what to install
    target = Path(imageio_ffmpeg.get_ffmpeg_exe())
    bin_dir = cache_dir() / "bin"
    link = bin_dir / "ffmpeg"
    if link.resolve() != target.resolve():
        bin_dir.mkdir(parents=True, exist_ok=True)
        tmp = bin_dir / f".ffmpeg.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)  # atomic: concurrent processes never see a missing link
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


_installed = False


def install() -> None:
    """Applies everything described in the module docstring. Idempotent; run on package import."""
    global _installed
    if _installed:
        return
    _installed = True
    os.environ.setdefault("AUDIOCRAFT_CONFIG", str(CONFIG_DIR / "teams" / "default.yaml"))
    _expose_ffmpeg()
    _allow_config_in_checkpoints()
    sys.meta_path.insert(0, _AudioCraftFinder())
    for name, patch in _POST_IMPORT_PATCHES.items():
        if name in sys.modules:  # imported before us: patch in place
            patch(sys.modules[name])
    for alias, target in _ALIASES.items():
        if alias in sys.modules and sys.modules[alias].__name__ != target:
            raise RuntimeError(f"{alias} was imported before audiocraft_mmd; import audiocraft_mmd first.")
    try:
        multiprocessing.set_forkserver_preload(["audiocraft_mmd"])
    except (ValueError, AttributeError):  # platforms without forkserver
        pass
