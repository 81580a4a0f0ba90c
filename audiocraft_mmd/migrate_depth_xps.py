"""Re-file the depth-LM XPs trained before the depth defaults changed under the signatures they have now.

On 2026-12-04 the defaults of ``codebooks_pattern.depth`` became ``context=every, dim=128`` (they were
``context=first, dim=64``). Dora names an XP by a hash of its config's difference from the defaults, so
a changed default renames no folder but changes what a signature means: an XP run with
``codebooks_pattern.modeling=depth`` alone (trained with the old defaults) would be read as the new
default LM, and one that set ``context=every dim=128`` would no longer be found. This command moves
each depth-LM XP folder to the signature of the config it was trained with (its ``.hydra/config.yaml``,
which Hydra wrote when it ran) and writes that config's depth overrides into its ``.argv.json``::

    python -m audiocraft_mmd.migrate_depth_xps            # list the moves
    python -m audiocraft_mmd.migrate_depth_xps --apply    # make them

Run it from the folder you run ``dora`` from, with no XP running. Folders that never ran (no
``.hydra``) are skipped; a placeholder folder (created by ``dora grid --init`` or ``grid status``,
nothing trained in it) in the way of a move is replaced. A move onto a folder that holds a run is
refused with both folders named, before anything moves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import shutil
import sys
import typing as tp

import omegaconf

DEPTH_KEYS = ("context", "dim")
OLD_CONTEXT = "first"  # XPs trained before ``context`` existed used the depth position 0 only


class MigrationError(RuntimeError):
    """A move would overwrite a folder that holds a run."""


def _holds_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in (".hydra", "history.json", "checkpoint.th"))


def trained_argv(folder: Path) -> tp.Optional[tp.List[str]]:
    """The XP's argv with its depth settings as trained (None if it is not a depth LM that ran)."""
    config = folder / ".hydra" / "config.yaml"
    if not (config.exists() and (folder / ".argv.json").exists()):
        return None
    cfg = omegaconf.OmegaConf.load(config)
    pattern = cfg.get("codebooks_pattern") or {}
    if pattern.get("modeling") != "depth":
        return None
    trained = {"context": pattern.depth.get("context", OLD_CONTEXT), "dim": pattern.depth.dim}
    argv = [item for item in json.loads((folder / ".argv.json").read_text())
            if not any(item.startswith(f"codebooks_pattern.depth.{key}=") for key in DEPTH_KEYS)]
    return argv + [f"codebooks_pattern.depth.{key}={trained[key]}" for key in DEPTH_KEYS]


def plan(xps: Path) -> tp.List[tp.Tuple[Path, str, tp.List[str]]]:
    """``(folder, new signature, argv)`` for every depth-LM XP whose signature changed.

    Raises:
        MigrationError: When a move's target holds a run that is not itself moving away.
    """
    from .train import main
    moves = []
    for folder in sorted(p for p in xps.iterdir() if p.is_dir()):
        argv = trained_argv(folder)
        if argv is None:
            continue
        sig = main.get_xp(argv).sig
        if sig != folder.name:
            moves.append((folder, sig, argv))
    moving = {folder.name for folder, _, _ in moves}
    targets: tp.Dict[str, str] = {}
    for folder, sig, _ in moves:
        if sig in targets:
            raise MigrationError(f"{folder.name} and {targets[sig]} were trained with the same config: both "
                                 f"would become {sig}; remove one of them first")
        targets[sig] = folder.name
        if sig not in moving and _holds_run(xps / sig):
            raise MigrationError(f"{folder.name} would move to {sig}, which holds another run ({xps / sig}); "
                                 "nothing was moved")
    return moves


def apply(xps: Path, moves: tp.Sequence[tp.Tuple[Path, str, tp.List[str]]]) -> None:
    """Makes the moves of :func:`plan` in two steps, so that signatures may swap."""
    staged = []
    for folder, sig, argv in moves:
        temporary = folder.with_name(folder.name + ".migrating")
        folder.rename(temporary)
        staged.append((temporary, sig, argv))
    for temporary, sig, argv in staged:
        target = xps / sig
        if target.exists():  # a placeholder (checked by plan)
            shutil.rmtree(target)
        temporary.rename(target)
        (target / ".argv.json").write_text(json.dumps(argv))


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    from .train import main as train_main
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.migrate_depth_xps",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--apply", action="store_true", help="make the moves (default: list them)")
    args = parser.parse_args(argv)
    xps = Path(train_main.dora.dir) / "xps"
    if not xps.is_dir():
        print(f"No XPs in {xps}: nothing to migrate.")
        return 0
    try:
        moves = plan(xps)
    except MigrationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for folder, sig, argv in moves:
        depth = ", ".join(item.split(".")[-1] for item in argv[-len(DEPTH_KEYS):])
        print(f"{folder.name} -> {sig}  (trained with {depth})")
    if not moves:
        print(f"Every depth-LM XP in {xps} is under its signature.")
    elif args.apply:
        apply(xps, moves)
        print(f"Moved {len(moves)} XP folder(s).")
    else:
        print(f"{len(moves)} move(s); run again with --apply to make them.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
