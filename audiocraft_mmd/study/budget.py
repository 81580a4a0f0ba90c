"""``python -m audiocraft_mmd.study budget``: how the study's codec improves with its budget (grid ``codec_budget``).

The study's baseline (λ = 0) at both study seeds, trained for :data:`UPDATES` updates with the evaluate
stage every :data:`EVERY`: one row per evaluation with each seed's figures (SI-SNR, mel distance,
log-spectral distance per band, comb, mean codebook entropy, MI under the delay alignment) and the XP-minutes
spent so far. A figure has stopped improving at the first budget from which every later step (the change
of the two seeds' mean between consecutive evaluations) is smaller than the gap between the seeds at the
later evaluation: more training changes it less than a second run does.

Every figure is stored in ``docs/research/measurements/`` (the codec's file, its ``curve``);
``--from-measurements`` prints the same tables from the stored files alone. ``study report`` adds the
section to docs/research/RESULTS.md once both XPs have finished.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import typing as tp

from .measurements import CodecMeasurement, MeasurementSource
from .report import markdown_table
from .sources import add_source_options, command_source, emit
from .specs import SMALL, CodecSpec

UPDATES, EVERY = 3000, 500
UPDATES_PER_EPOCH = 50  # the study's (config/solver/compression/default.yaml)
GRID = "codec_budget"
# (evaluate key, column title, format)
FIGURES: tp.Tuple[tp.Tuple[str, str, str], ...] = (
    ("si_snr_db", "SI-SNR (dB)", "+.2f"),
    ("mel_distance", "mel", ".3f"),
    ("lsd_0_250", "LSD 0-250", ".2f"),
    ("lsd_250_1000", "LSD 250-1k", ".2f"),
    ("lsd_1000_2000", "LSD 1k-2k", ".2f"),
    ("lsd_2000_4000", "LSD 2k-4k", ".2f"),
    ("comb_db", "comb (dB)", "+.2f"),
    ("entropy_mean", "entropy (bit)", ".2f"),
    ("mi_delay", "MI delay (bit)", ".3f"),
)


def spec(seed: int) -> CodecSpec:
    """The study's baseline at ``seed``, trained for :data:`UPDATES` updates, evaluated every :data:`EVERY` and
    keeping every checkpoint (a codec of each budget; ``checkpoint.keep_last`` is not in the signature)."""
    epochs, every = UPDATES // UPDATES_PER_EPOCH, EVERY // UPDATES_PER_EPOCH
    return CodecSpec(0., "delay", "dim", seed, (("optim.epochs", epochs), ("evaluate.every", every),
                                                ("checkpoint.save_every", every), ("checkpoint.keep_last", None)))


def overrides(seed: int) -> tp.Dict[str, tp.Any]:
    """The grid's XP at ``seed`` (``grids/codec_budget.py`` schedules exactly these)."""
    return SMALL.codec_overrides(spec(seed))


def collect(source: MeasurementSource) -> tp.Dict[int, tp.Optional[CodecMeasurement]]:
    """Each study seed's finished XP (None while unfinished)."""
    return {seed: source.codec(overrides(seed)) for seed in SMALL.seeds}


def stopped_at(updates: tp.Sequence[int], means: tp.Sequence[float], gaps: tp.Sequence[float]) -> tp.Optional[int]:
    """The first budget from which every later step of ``means`` is within the seed gap at its end (None when
    the last step is still larger): the budget past which the figure changes less than between two runs."""
    first = None
    for index in range(len(updates) - 1, 0, -1):
        if abs(means[index] - means[index - 1]) > gaps[index]:
            break
        first = updates[index - 1]
    return first


def _curve(codec: CodecMeasurement) -> tp.Dict[int, tp.Dict[str, float]]:
    return {int(point["epoch"]) * UPDATES_PER_EPOCH: point for point in codec.curve}


def tables(codecs: tp.Dict[int, tp.Optional[CodecMeasurement]]) -> str:
    """The curve table (each seed's figures per evaluation, XP-minutes so far) and the stopping budget of each
    figure; lists the seeds still unfinished."""
    seeds = list(codecs)
    missing = [f"seed {seed}" for seed, codec in codecs.items() if codec is None]
    if missing:
        return f"Grid `{GRID}`: not finished ({', '.join(missing)}); run `python -m audiocraft_mmd.grid local {GRID}`."
    curves = {seed: _curve(tp.cast(CodecMeasurement, codec)) for seed, codec in codecs.items()}
    updates = sorted(set.intersection(*(set(curve) for curve in curves.values())))
    if len(updates) < 2:
        return f"Grid `{GRID}`: fewer than two evaluations stored (the codecs' `curve`): no curve to show."
    titles = [title for _, title, _ in FIGURES]
    rows = [[str(n), *(" / ".join(format(curves[seed][n][key], form) for seed in seeds) for key, _, form in FIGURES),
             " / ".join(f"{curves[seed][n]['minutes']:.0f}" for seed in seeds)] for n in updates]
    steps = []
    for previous, n in zip(updates, updates[1:]):
        cells = []
        for key, _, form in FIGURES:
            step = _mean(curves, key, n) - _mean(curves, key, previous)
            unsigned = form.lstrip("+")
            cells.append(f"{format(step, '+' + unsigned)} ({format(_gap(curves, key, n), unsigned)})")
        steps.append([f"{previous} → {n}", *cells])
    stops = []
    for key, title, _ in FIGURES:
        found = stopped_at(updates, [_mean(curves, key, n) for n in updates], [_gap(curves, key, n) for n in updates])
        stops.append(f"{title}: {found if found is not None else f'still changing at {updates[-1]}'}")
    return "\n".join([
        f"Seeds {' / '.join(map(str, seeds))} in each cell (evaluate stage: 64 one-second clips); XP-minutes spent "
        "by each up to that evaluation:", "", markdown_table(["updates", *titles, "XP-min"], rows), "",
        "Step of the seeds' mean between evaluations (the gap between the seeds at the later one):", "",
        markdown_table(["", *titles], steps), "",
        "Budget (updates) from which every later step is within the seed gap: " + "; ".join(stops) + "."])


def _mean(curves: tp.Dict[int, tp.Dict[int, tp.Dict[str, float]]], key: str, n: int) -> float:
    return statistics.fmean(curve[n][key] for curve in curves.values())


def _gap(curves: tp.Dict[int, tp.Dict[int, tp.Dict[str, float]]], key: str, n: int) -> float:
    values = [curve[n][key] for curve in curves.values()]
    return max(values) - min(values)


def report_section(source: MeasurementSource) -> tp.Optional[str]:
    """The section of docs/research/RESULTS.md (None until both XPs have finished)."""
    codecs = collect(source)
    if any(codec is None for codec in codecs.values()):
        return None
    minutes = sum(tp.cast(CodecMeasurement, codec).minutes for codec in codecs.values())
    return "\n".join([
        f"## The codec's budget (grid `{GRID}`)", "",
        f"The study's baseline trained for {UPDATES} updates at both seeds, evaluated every {EVERY} "
        f"(`python -m audiocraft_mmd.grid local {GRID} --jobs 2`; the same tables: "
        f"`python -m audiocraft_mmd.study budget`); {minutes:.0f} XP-minutes in all.", "",
        tables(codecs), ""])


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.study budget", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the tables to this file (default: print them)")
    add_source_options(parser)
    args = parser.parse_args(argv)
    emit(tables(collect(command_source(args, ["budget", *(argv or [])]))) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
