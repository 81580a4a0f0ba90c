"""Files written whole or not at all: several processes (a grid's XPs, test workers) share the cache."""

import os
import typing as tp
from pathlib import Path

import torch


def torch_save_atomic(obj: tp.Any, path: Path) -> None:
    """``torch.save`` to a sibling named after this process, then renamed: a concurrent reader sees the
    old file or the new one, never a half-written one, and two writers never interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
