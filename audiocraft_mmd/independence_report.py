"""``python -m audiocraft_mmd.independence_report``: the table of grid ``independence`` (#23).

For every seed and experiment of ``grids/independence.py`` that has finished, the evaluate stage's
figures (SI-SNR, mean and least codebook entropy, MI under both alignments and its fast/slow split, the
loss's own statistic) beside those of the codec it is compared with (a fine-tune's λ = 0 twin: same
start, updates and seed; the one-run schedule's: the study baseline), the relative cut in fast
delay-aligned MI, the entropy and SI-SNR changes, the issue's gates (cut >= 50 %, entropy at most 0.25
bit lower, SI-SNR at most 0.5 dB lower) and the XP-minutes. Unfinished XPs are listed as such.

Figures come from the evaluate stage (64 one-second clips of the evaluate split), not from the
dependence command on the whole split: read them as the grid's progress, not as the study's result.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
import sys
import typing as tp

MIN_FAST_CUT = 0.5
MAX_ENTROPY_LOSS_BITS = 0.25
MAX_SISNR_LOSS_DB = 0.5
COLUMNS = ("si_snr_db", "entropy_mean", "entropy_min", "mi_parallel", "mi_delay", "mi_fast_delay", "mi_slow_delay",
           "mi_fast_parallel", "mmd_estimate")


def _xp(overrides: tp.Dict[str, tp.Any]):
    from .train import main
    return main.get_xp(main.value_to_argv(overrides))


def collect() -> tp.List[tp.Dict[str, tp.Any]]:
    """One row per seed and experiment: its XP, evaluate figures (None while unfinished) and reference."""
    from .grids._study import SMALL, last_stage_metrics
    from .grids.independence import experiments
    from .study import xp_minutes
    from .xps import is_finished
    rows = []
    for seed in SMALL.seeds:
        table = experiments(seed)
        for label, (overrides, reference) in table.items():
            xp = _xp(overrides)
            done = is_finished(xp)
            rows.append({"seed": seed, "label": label, "sig": xp.sig, "reference": reference,
                         "metrics": last_stage_metrics(xp, "evaluate") if done else None,
                         "minutes": xp_minutes(xp) if done else float("nan")})
    return rows


def _fmt(value: tp.Optional[float], spec: str = ".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def compare(row: tp.Dict[str, tp.Any], reference: tp.Dict[str, tp.Any]) -> tp.Dict[str, tp.Optional[float]]:
    """The cut in fast delay-aligned MI (a fraction of the reference's), entropy and SI-SNR changes, gates."""
    ours, theirs = row["metrics"], reference["metrics"]
    if ours is None or theirs is None or "mi_fast_delay" not in ours or "mi_fast_delay" not in theirs:
        return {}
    cut = 1 - ours["mi_fast_delay"] / theirs["mi_fast_delay"] if theirs["mi_fast_delay"] > 0 else None
    entropy = ours["entropy_mean"] - theirs["entropy_mean"]
    sisnr = ours["si_snr_db"] - theirs["si_snr_db"]
    met = cut is not None and cut >= MIN_FAST_CUT and entropy >= -MAX_ENTROPY_LOSS_BITS and sisnr >= -MAX_SISNR_LOSS_DB
    return {"cut": cut, "entropy": entropy, "sisnr": sisnr, "met": met}


def table(rows: tp.Sequence[tp.Dict[str, tp.Any]]) -> str:
    header = ["seed", "codec", "XP", "SI-SNR (dB)", "entropy mean / min", "MI parallel / delay",
              "fast / slow delay", "fast parallel", "loss statistic", "compared with", "fast delay cut",
              "Δ entropy", "Δ SI-SNR", "gates", "XP-min"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    by_key = {(row["seed"], row["label"]): row for row in rows}
    for row in rows:
        m = row["metrics"] or {}
        reference = by_key.get((row["seed"], row["reference"])) if row["reference"] else None
        delta = compare(row, reference) if reference else {}
        if row["metrics"] is None:
            cells = ["not finished"] + ["-"] * 7
        else:
            cells = [_fmt(m.get("si_snr_db"), ".2f"), f"{_fmt(m.get('entropy_mean'), '.2f')} / {_fmt(m.get('entropy_min'), '.2f')}",
                     f"{_fmt(m.get('mi_parallel'))} / {_fmt(m.get('mi_delay'))}",
                     f"{_fmt(m.get('mi_fast_delay'))} / {_fmt(m.get('mi_slow_delay'))}", _fmt(m.get("mi_fast_parallel")),
                     _fmt(m.get("mmd_estimate"), ".4f"), row["reference"] or "-",
                     _fmt(None if delta.get("cut") is None else 100 * delta["cut"], ".1f") + (" %" if delta.get("cut") is not None else "")]
        cells += [_fmt(delta.get("entropy"), "+.2f"), _fmt(delta.get("sisnr"), "+.2f"),
                  ("met" if delta["met"] else "not met") if delta else "-", _fmt(row["minutes"], ".1f")]
        lines.append("| " + " | ".join([str(row["seed"]), row["label"], row["sig"], *cells]) + " |")
    return "\n".join(lines)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.independence_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the table to this file (default: print it)")
    args = parser.parse_args(argv)
    text = table(collect()) + "\n"
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
