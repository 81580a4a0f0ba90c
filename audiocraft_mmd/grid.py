"""A Dora grid without Slurm, and every grid's outcome as an exit code.

    python -m audiocraft_mmd.grid local mmd_sweep_cpu    # run the grid's XPs here, one after another
    python -m audiocraft_mmd.grid status mmd_sweep_cpu   # each XP's state; exit 1 if one failed

``local`` creates the grid's XPs (as ``dora grid NAME --dry_run --init`` does), then runs each
unfinished one with ``dora run -f SIG``, printing its epoch summaries (``--jobs N``: N at a time, the
cores split between them). Run it again after an
interruption: finished XPs are skipped and an unfinished one resumes from its last checkpoint. A
failing XP does not stop the others; its output is kept in ``<xp folder>/local_run.log``. At the end it
prints the grid's Dora table and exits 1 if any XP failed.

``status`` reads the Slurm job of each XP (through Dora) or its local run, and exits 1 if any failed:
``dora grid`` itself exits 0 whatever happened to the jobs. Run both from the folder you run
``dora`` from (manifest paths and the default Dora folder are relative to it).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
from dataclasses import dataclass
import importlib
import json
import os
from pathlib import Path
import sys
import time
import typing as tp

from .utils.progress import Progress

LOCAL_STATE = "local_run.json"
LOCAL_LOG = "local_run.log"
FAILED_STATES = ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                 "DEADLINE", "INTERRUPTED")
PROGRESS_MARKERS = ("Summary |", "Error", "error:")  # child lines worth echoing while an XP runs
TAIL_LINES = 30


@dataclass
class XPStatus:
    """One XP of a grid as ``status`` reports it.

    Attributes:
        sig: Dora signature.
        name: The XP's overrides relative to the grid's base.
        state: A Slurm job state (COMPLETED, FAILED, RUNNING, ...) or, for local runs, COMPLETED,
            FAILED, RUNNING, INTERRUPTED; NOT_STARTED when neither exists.
        epochs: Epochs in the XP's history, and ``optim.epochs``.
        log: The file to read when it failed.
    """
    sig: str
    name: str
    state: str
    epochs: tp.Tuple[int, int]
    log: tp.Optional[Path]

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES

    def line(self) -> str:
        return f"{self.sig}  {self.state:<13} epoch {self.epochs[0]}/{self.epochs[1]}  {self.name}"


def load_explorer(name: str):
    """The ``explorer`` of grid ``audiocraft_mmd.grids.<name>``; SystemExit listing the grids otherwise."""
    from . import grids
    folder = Path(grids.__file__).parent
    available = sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))
    if name not in available:
        raise SystemExit(f"No grid {name!r} in {folder}; available grids: {', '.join(available)}")
    return importlib.import_module(f"{grids.__name__}.{name}").explorer


def grid_sheeps(name: str, patterns: tp.Sequence[str] = (), show_table: bool = False) -> list:
    """Dora's sheeps (XP + Slurm job, if any) of the grid whose names match every pattern, each XP
    initialised so that ``dora run -f SIG`` works."""
    from dora.grid import RunGridArgs, run_grid
    from .train import main
    args = RunGridArgs(dry_run=True, init=True, monitor=False, silent=not show_table, patterns=list(patterns))
    return run_grid(main, load_explorer(name), name, args=args)


def epochs(xp) -> tp.Tuple[int, int]:
    history = xp.folder / "history.json"
    done = len(json.loads(history.read_text())) if history.exists() else 0
    return done, int(xp.cfg.optim.epochs)


def xp_status(sheep) -> XPStatus:
    from .train import main
    xp = sheep.xp
    local = xp.folder / LOCAL_STATE
    if sheep.job is not None:
        state, log = sheep.state() or "UNKNOWN", sheep.log
    elif local.exists():
        state, log = json.loads(local.read_text())["state"], xp.folder / LOCAL_LOG
    else:  # never run by this command nor on Slurm, but maybe by a plain `dora run`
        from .utils.xps import is_finished
        state, log = ("COMPLETED" if is_finished(xp) else "NOT_STARTED"), None
    return XPStatus(sig=xp.sig, name=main.get_name(xp), state=state, epochs=epochs(xp), log=log)


def tail(path: tp.Optional[Path], lines: int = TAIL_LINES) -> str:
    if path is None or not Path(path).exists():
        return "(no log)"
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def report(statuses: tp.List[XPStatus]) -> int:
    """Prints each XP's state, and the log tail of failed ones; returns 1 if any failed."""
    for status in statuses:
        print(status.line())
    failed = [status for status in statuses if status.failed]
    for status in failed:
        print(f"\n--- {status.sig} {status.state} ({status.name}); last lines of {status.log}:\n{tail(status.log)}")
    counts = collections.Counter(status.state for status in statuses)
    print("\n" + ", ".join(f"{count} {state}" for state, count in sorted(counts.items())))
    return 1 if failed else 0


def run_locally(sheep, index: int, total: int, threads: tp.Optional[int] = None) -> str:
    """Runs one XP with ``dora run -f SIG``, echoing its progress; returns COMPLETED or FAILED.

    ``threads`` sets its ``num_threads`` (outside the XP's signature); None keeps the config's.
    """
    from .utils.xps import is_finished, run_xp
    xp = sheep.xp
    prefix = f"[{index}/{total} {xp.sig}]"
    state_file = xp.folder / LOCAL_STATE
    start = time.time()
    state_file.write_text(json.dumps({"state": "RUNNING", "started": start}))
    state = "INTERRUPTED"
    try:
        with open(xp.folder / LOCAL_LOG, "a") as log:
            def on_line(line: str) -> None:
                log.write(line + "\n")
                if any(marker in line for marker in PROGRESS_MARKERS):
                    print(f"{prefix} {line.strip()}", flush=True)
            code = run_xp(["-f", xp.sig, *([f"num_threads={threads}"] if threads else [])], on_line=on_line)
        state = "COMPLETED" if code == 0 and is_finished(xp) else "FAILED"
    finally:
        seconds = time.time() - start
        state_file.write_text(json.dumps({"state": state, "started": start, "seconds": seconds}))
    print(f"{prefix} {state} in {seconds / 60:.1f} min (output: {xp.folder / LOCAL_LOG})", flush=True)
    return state


def local(name: str, patterns: tp.Sequence[str] = (), jobs: int = 1) -> int:
    """Runs the grid's unfinished XPs here, ``jobs`` at a time (each then gets cores / jobs threads)."""
    from .utils.xps import is_finished
    if jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {jobs}")
    sheeps = grid_sheeps(name, patterns)
    if not sheeps:
        raise SystemExit(f"No XP of grid {name} matches {' '.join(patterns)!r}.")
    print(f"Grid {name}: {len(sheeps)} XPs, run here {'one after another' if jobs == 1 else f'{jobs} at a time'} "
          f"(interrupt at will: running this again resumes).", flush=True)
    pending = []
    for index, sheep in enumerate(sheeps, 1):
        status = xp_status(sheep)
        if is_finished(sheep.xp):
            print(f"[{index}/{len(sheeps)} {status.sig}] already finished: {status.name}", flush=True)
            continue
        print(f"[{index}/{len(sheeps)} {status.sig}] to run (epoch {status.epochs[0]}/{status.epochs[1]} done): "
              f"{status.name}", flush=True)
        pending.append((sheep, index))
    # One job keeps the config's threads; more split the cores between them. Either way, in grid order.
    threads = None if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)
    # Counted lines even on a terminal: the XPs' own lines are echoed in between.
    counter = Progress(len(pending), f"grid local {name}", stream=sys.stdout, tty=False, min_interval=0)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_locally, sheep, index, len(sheeps), threads): sheep for sheep, index in pending}
        for future in concurrent.futures.as_completed(futures):
            counter.step(f"XPs run ({futures[future].xp.sig} {future.result()})")
    grid_sheeps(name, patterns, show_table=True)
    return report([xp_status(sheep) for sheep in sheeps])


def status(name: str, patterns: tp.Sequence[str] = ()) -> int:
    return report([xp_status(sheep) for sheep in grid_sheeps(name, patterns)])


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.grid", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("action", choices=["local", "status"])
    parser.add_argument("grid", help="a grid of audiocraft_mmd/grids, e.g. mmd_sweep_cpu")
    parser.add_argument("patterns", nargs="*", help="only the XPs whose name matches all of them (as dora grid)")
    parser.add_argument("--jobs", type=int, default=1, help="local: XPs run at once (threads split between them)")
    args = parser.parse_args(argv)
    if args.action == "local":
        return local(args.grid, args.patterns, jobs=args.jobs)
    return status(args.grid, args.patterns)


if __name__ == "__main__":
    sys.exit(main())
