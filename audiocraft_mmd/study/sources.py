"""Where a study command takes its figures from: the command-line options, and the source they name.

By default a command measures the finished XPs on this machine and stores every figure in
``--measurements`` (:class:`.xp_measurements.XPMeasurements`); with ``--from-measurements`` it reads the
stored files alone (:class:`.measurements.MeasurementStore`) and needs no XP.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import shlex
import sys
import typing as tp

from .measurements import DEFAULT_FOLDER, MeasurementSource, MeasurementStore, Provenance, shown_path
from .xp_measurements import XPMeasurements


def add_source_options(parser: argparse.ArgumentParser, default: str = shown_path(DEFAULT_FOLDER)) -> None:
    """``--measurements DIR`` (None when not given: the command resolves ``default``) and ``--from-measurements``."""
    parser.add_argument("--measurements", type=lambda folder: MeasurementStore(Path(folder)), default=None,
                        metavar="DIR", help=f"the folder of stored measurements, one JSON file per XP (default: "
                        f"{default})")
    parser.add_argument("--from-measurements", action="store_true",
                        help="read the stored measurements alone: no XP is read or measured")


def xp_source(args: argparse.Namespace, argv: tp.Sequence[str]) -> XPMeasurements:
    """The XPs' source recording into ``args.measurements``, its provenance the command line
    ``python -m audiocraft_mmd.study ARGV``."""
    provenance = Provenance.current(" ".join(["python -m audiocraft_mmd.study", *map(shlex.quote, argv)]))
    generation = {key: getattr(args, key) for key in ("gen_samples", "gen_duration") if hasattr(args, key)}
    return XPMeasurements(args.measurements, provenance, **generation)


def command_source(args: argparse.Namespace, argv: tp.Sequence[str]) -> MeasurementSource:
    """The source of a study command's tables: the stored files alone with ``--from-measurements``, else the
    XPs (:func:`xp_source`); ``args.measurements`` defaults to the repository's folder."""
    args.measurements = args.measurements or MeasurementStore()
    return args.measurements if args.from_measurements else xp_source(args, argv)


def emit(text: str, out: tp.Optional[str]) -> None:
    """The command's tables to ``out``, or to the standard output."""
    if out:
        Path(out).write_text(text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
