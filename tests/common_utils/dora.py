"""Dora from the tests: `dora ARGS` in a subprocess, data overrides, XP histories."""

import os
from pathlib import Path
import subprocess
import sys
import typing as tp

from .paths import REPO

SPLITS = ["train", "valid", "evaluate", "generate"]


def dora(args, dora_dir: Path, timeout: int = 600, **env_vars) -> subprocess.CompletedProcess:
    """``python -m dora ARGS`` from the repository root, with ``dora_dir`` as the Dora folder."""
    env = {**os.environ, "AUDIOCRAFT_DORA_DIR": str(dora_dir), **env_vars}
    return subprocess.run([sys.executable, "-m", "dora", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def datasource(egs: Path):
    """Overrides training on prepared manifests `<egs>/<split>`, with no automatic preparation."""
    return ["prepare_data.source=null", *[f"datasource.{split}={egs / split}" for split in SPLITS]]


def run_new_xp(args: tp.List[str], dora_dir: Path):
    """``dora ARGS`` in ``dora_dir``; returns the run and the XP folder it created (None if none)."""
    xps = dora_dir / "xps"
    before = set(xps.iterdir()) if xps.exists() else set()
    run = dora(args, dora_dir)
    created = sorted(set(xps.iterdir()) - before) if xps.exists() else []
    assert len(created) <= 1, created
    return run, (created[0] if created else None)


def without_durations(entries: list) -> list:
    """An XP's history without the stages' durations (what differs between two identical runs)."""
    return [{stage: {k: v for k, v in metrics.items() if k != "duration"} for stage, metrics in entry.items()}
            for entry in entries]
