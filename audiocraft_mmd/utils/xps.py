"""Dora XPs seen from the outside: where one lives, whether it has finished, running one in a child process."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import typing as tp

from ..errors import ConfigError


class XPNotFound(ConfigError):
    """No XP under the given signature or folder; the message names the folder searched."""


def dora_dir() -> Path:
    """The folder of every XP (``<dora_dir>/xps/SIG``): ``$AUDIOCRAFT_DORA_DIR``, else the team config's
    ``dora_dir``, absolute (relative paths are taken from the current directory)."""
    if os.environ.get("AUDIOCRAFT_DORA_DIR"):  # what AudioCraft reads first, without its log line
        return Path(os.environ["AUDIOCRAFT_DORA_DIR"]).expanduser().resolve()
    from audiocraft.environment import AudioCraftEnvironment
    return AudioCraftEnvironment.get_dora_dir().expanduser().resolve()


def xp_folder(reference: str) -> Path:
    """The folder of an XP given as ``//sig/SIG``, ``SIG`` or the XP's folder itself.

    Raises:
        XPNotFound: Naming the folder that does not exist.
    """
    path = Path(reference)
    if path.is_dir():
        return path
    sig = (reference[len("//sig/"):] if reference.startswith("//sig/") else reference).strip("/")
    folder = dora_dir() / "xps" / sig
    if not folder.is_dir():
        raise XPNotFound(f"no XP {sig}: {folder} does not exist (check the signature, or AUDIOCRAFT_DORA_DIR)")
    return folder


def read_history(folder: Path) -> tp.List[tp.Dict[str, tp.Dict[str, tp.Any]]]:
    """The XP's per-epoch history (a list of stage -> metrics); empty when it has not finished an epoch."""
    history = Path(folder) / "history.json"
    return json.loads(history.read_text()) if history.exists() else []


def last_stage_metrics(xp, stage: str) -> tp.Dict[str, float]:
    """The metrics of the last epoch of ``xp`` (a Dora XP, or its folder) that ran ``stage`` (empty when none did)."""
    for entry in reversed(read_history(getattr(xp, "folder", xp))):
        if stage in entry:
            return entry[stage]
    return {}


def is_finished(xp) -> bool:
    """Whether a Dora XP has a checkpoint and a history entry for each of its ``optim.epochs``."""
    if not (xp.folder / "checkpoint.th").exists():
        return False
    return len(read_history(xp.folder)) >= int(xp.cfg.optim.epochs)


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
