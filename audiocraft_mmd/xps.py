"""Dora XPs seen from the outside: whether one has finished, and running one in a child process."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import typing as tp


def is_finished(xp) -> bool:
    """Whether a Dora XP has a checkpoint and a history entry for each of its ``optim.epochs``."""
    history = xp.folder / "history.json"
    if not history.exists() or not (xp.folder / "checkpoint.th").exists():
        return False
    return len(json.loads(history.read_text())) >= int(xp.cfg.optim.epochs)


def run_xp(argv: tp.Sequence[str], cwd: tp.Optional[Path] = None,
           on_line: tp.Optional[tp.Callable[[str], None]] = None) -> int:
    """Runs ``dora run ARGV`` (which resumes an unfinished XP from its checkpoint) in a child process.

    Args:
        argv: The XP's overrides, or ``["-f", SIG]`` for an initialised XP.
        cwd: Working directory: relative manifest paths are taken from it. Default: the current one.
        on_line: Called with every line the run prints (stdout and stderr merged); None lets the
            output through to this process's.

    Returns:
        The child's exit code.
    """
    command = [sys.executable, "-m", "dora", "-P", "audiocraft_mmd", "run", *argv]
    if on_line is None:
        return subprocess.run(command, cwd=cwd, env=os.environ.copy()).returncode
    with subprocess.Popen(command, cwd=cwd, env=os.environ.copy(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, bufsize=1) as child:
        assert child.stdout is not None
        for line in child.stdout:
            on_line(line.rstrip("\n"))
    return child.returncode
