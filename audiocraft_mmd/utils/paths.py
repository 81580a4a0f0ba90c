"""Where audiocraft_mmd keeps its files: the package's config tree and the user's cache."""

import os
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def cache_dir() -> Path:
    """``$AUDIOCRAFT_MMD_CACHE``, default ``~/.cache/audiocraft_mmd``: datasets, converted weights, tools."""
    return Path(os.environ.get("AUDIOCRAFT_MMD_CACHE") or Path.home() / ".cache" / "audiocraft_mmd").expanduser()
