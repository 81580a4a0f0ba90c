"""``python -m audiocraft_mmd.study independence``: the tables of grids ``independence`` and ``independence_lms``.

For every seed and experiment of :mod:`audiocraft_mmd.study.independence_specs` that has finished, the evaluate stage's
figures (SI-SNR, mean and least codebook entropy, MI under both alignments and its fast/slow split, the
loss's own statistic) beside those of the codec it is compared with (a fine-tune's λ = 0 twin: same
start, updates and seed; the one-run schedule's: the study baseline), the relative cut in fast
delay-aligned MI, the entropy and SI-SNR changes, the gates (cut >= 50 %, entropy at most 0.25
bit lower, SI-SNR at most 0.5 dB lower) and the XP-minutes. Unfinished XPs are listed as such.

Figures come from the evaluate stage (64 one-second clips of the evaluate split). ``--measure`` adds
the dependence command on the whole evaluate split, or on other music with ``--data`` (10 s segments,
slow pairs 2.5 s apart or more, 95 % intervals; cached in each XP folder), where the gate also asks the
cut to leave the reference's interval. ``--lms`` adds the LMs of grid ``independence_lms``: validation
cross-entropy against the codec's entropy, each factorised LM's gap to the depth LM (codebooks 2..K)
and the share of the reference's gap a variant closes; with ``--generate``, the parallel, delay and
depth LMs also generate (8 clips of 3 s, as in the study) and the table adds the musicnn kernel distance
of their generations to the evaluate split, with its 95 % interval.

Every figure read or measured is stored in ``docs/research/measurements/`` (``--measurements DIR``; see
:mod:`audiocraft_mmd.study.measurements`); ``--from-measurements`` prints the same tables from the stored
files alone, without the XPs (an unfinished codec's signature is then unknown: "-").
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
import sys
import typing as tp

from ..utils.progress import track
from .independence_specs import LM_PAIRS, LMS, REPEAT_CODEC, REPEAT_SEED_OFFSET, experiments, lm_argv
from .measurements import LMKey, MeasurementSource, shown_path
from .report import interval_text, kernel_text
from .results import (DEPENDENCE_FOLDER, FACTORISED_LMS, LMResult, add_generation_options, gap_closure,
                      gap_cross_entropy, gap_keys)
from .sources import add_source_options, command_source, emit
from .specs import SMALL

MIN_FAST_CUT = 0.5
MAX_ENTROPY_LOSS_BITS = 0.25
MAX_SISNR_LOSS_DB = 0.5
# The dependence command's settings for --measure: the study's (so the baselines' measurements are shared
# with its report), on 10 s segments, which gives slow pairs 2.5 s apart or more.
SEGMENT_SECONDS = 10.


def collect(source: MeasurementSource) -> tp.List[tp.Dict[str, tp.Any]]:
    """One row per seed and experiment, from ``source`` (:mod:`.measurements`): its signature ("-" where
    unknown), its measurement and evaluate figures (None while unfinished) and its reference."""
    rows = []
    for seed in SMALL.seeds:
        table = experiments(seed, lambda spec: source.codec_sig(SMALL.codec_overrides(spec)))
        for label, (overrides, reference) in table.items():
            codec = source.codec(overrides)
            sig = codec.sig if codec is not None else source.codec_sig(overrides)
            rows.append({"seed": seed, "label": label, "sig": sig or "-", "reference": reference, "codec": codec,
                         "metrics": None if codec is None else codec.evaluate,
                         "minutes": float("nan") if codec is None else codec.minutes})
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
            cut = delta.get("cut")
            cells = [_fmt(m.get("si_snr_db"), ".2f"),
                     f"{_fmt(m.get('entropy_mean'), '.2f')} / {_fmt(m.get('entropy_min'), '.2f')}",
                     f"{_fmt(m.get('mi_parallel'))} / {_fmt(m.get('mi_delay'))}",
                     f"{_fmt(m.get('mi_fast_delay'))} / {_fmt(m.get('mi_slow_delay'))}",
                     _fmt(m.get("mi_fast_parallel")), _fmt(m.get("mmd_estimate"), ".4f"), row["reference"] or "-",
                     _fmt(None if cut is None else 100 * cut, ".1f") + (" %" if cut is not None else "")]
        cells += [_fmt(delta.get("entropy"), "+.2f"), _fmt(delta.get("sisnr"), "+.2f"),
                  ("met" if delta["met"] else "not met") if delta else "-", _fmt(row["minutes"], ".1f")]
        lines.append("| " + " | ".join([str(row["seed"]), row["label"], row["sig"], *cells]) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# --measure: the dependence command on the whole evaluate split.

def dependence_folder(data: tp.Optional[str]) -> str:
    """Where the dependence command's report on ``data`` is cached, and its name in a codec's measurement."""
    return DEPENDENCE_FOLDER if data is None else f"{DEPENDENCE_FOLDER}_{Path(data).parent.name}"


def measure(rows: tp.Sequence[tp.Dict[str, tp.Any]], source: MeasurementSource, data: tp.Optional[str] = None) -> None:
    """Adds ``dependence`` (the command's report: fast/slow split with intervals) to every finished row,
    measured on ``data`` (a manifest folder; default: each codec's evaluate split). Cached in the XP folder:
    ``study_dependence`` for the evaluate split (shared with the study's report), else
    ``study_dependence_<dataset>``."""
    folder = dependence_folder(data)
    for row in track([r for r in rows if r["codec"] is not None], "independence: codecs measured",
                     note=lambda r: f"{r['label']} seed={r['seed']}"):
        row["dependence"] = source.dependence(row["codec"], folder, data, SEGMENT_SECONDS)


def _split(report: tp.Dict[str, tp.Any], alignment: str, part: str) -> tp.Tuple[float, float, float]:
    """``(value, low, high)`` of one part (total, fast, slow) of the report's fast/slow split."""
    split = report["fast_slow"][alignment]
    low, high = split["intervals"].get(part, (math.nan, math.nan))
    return split[part], low, high


def compare_measured(row: tp.Dict[str, tp.Any], reference: tp.Dict[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    """The cut in fast delay-aligned MI on the whole split, whether it leaves the reference's interval, the
    entropy change (whole split) and SI-SNR change (evaluate stage), and the gates."""
    if "dependence" not in row or "dependence" not in reference:
        return {}
    ours, theirs = _split(row["dependence"], "delay", "fast"), _split(reference["dependence"], "delay", "fast")
    cut = 1 - ours[0] / theirs[0] if theirs[0] > 0 else None
    outside = ours[0] < theirs[1]
    entropy = _mean_entropy(row["dependence"]) - _mean_entropy(reference["dependence"])
    sisnr = row["metrics"]["si_snr_db"] - reference["metrics"]["si_snr_db"]
    met = (cut is not None and cut >= MIN_FAST_CUT and outside and entropy >= -MAX_ENTROPY_LOSS_BITS
           and sisnr >= -MAX_SISNR_LOSS_DB)
    return {"cut": cut, "outside": outside, "entropy": entropy, "sisnr": sisnr, "met": met}


def _mean_entropy(report: tp.Dict[str, tp.Any]) -> float:
    entropy = report["usage"]["entropy"]
    return sum(entropy) / len(entropy)


def measured_table(rows: tp.Sequence[tp.Dict[str, tp.Any]]) -> str:
    header = ["seed", "codec", "XP", "entropy mean", "MI parallel", "MI delay", "fast delay", "slow delay",
              "fast parallel", "compared with", "fast delay cut", "below its interval", "Δ entropy", "Δ SI-SNR",
              "gates"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    by_key = {(row["seed"], row["label"]): row for row in rows}
    for row in rows:
        if "dependence" not in row:
            continue
        report = row["dependence"]
        reference = by_key.get((row["seed"], row["reference"])) if row["reference"] else None
        delta = compare_measured(row, reference) if reference else {}
        cells = [f"{_mean_entropy(report):.2f}",
                 *(interval_text(_split(report, a, "total")) for a in ("parallel", "delay")),
                 *(interval_text(_split(report, "delay", part)) for part in ("fast", "slow")),
                 interval_text(_split(report, "parallel", "fast")), row["reference"] or "-",
                 "-" if delta.get("cut") is None else f"{100 * delta['cut']:.1f} %",
                 "-" if not delta else ("yes" if delta["outside"] else "no"),
                 _fmt(delta.get("entropy"), "+.2f"), _fmt(delta.get("sisnr"), "+.2f"),
                 ("met" if delta["met"] else "not met") if delta else "-"]
        lines.append("| " + " | ".join([str(row["seed"]), row["label"], row["sig"], *cells]) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# --lms: the LMs of grid independence_lms.

NATS_PER_BIT = math.log(2)


@dataclasses.dataclass(frozen=True)
class CodecRole:
    """What :func:`audiocraft_mmd.study.gap_closure` needs of a codec: is it the reference of its pair."""
    label: str
    seed: int
    is_baseline: bool


GENERATED_LMS = ("parallel", "delay", "depth")


def collect_lms(rows: tp.Sequence[tp.Dict[str, tp.Any]], source: MeasurementSource,
                generate: bool = False) -> tp.List[tp.Any]:
    """The finished LMs of grid ``independence_lms`` on the rows' codecs (validation CE per codebook);
    ``LMResult.pattern`` is the LM's name in :data:`grids.independence_lms.LMS`. With ``generate``, the
    LMs of :data:`GENERATED_LMS` also generate, timed and compared with the evaluate split (the source's
    ``generation``)."""
    references = set(LM_PAIRS.values())
    found = []
    for row in rows:
        if row["codec"] is None or (row["label"] not in LM_PAIRS and row["label"] not in references):
            continue
        for name in LMS:
            lm = find_lm(source, row["sig"], name, row["seed"])
            if lm is None:
                continue
            cell = lm.validation
            if generate and name in GENERATED_LMS:
                cell = {**cell, **source.generation(lm, f"{name} on {row['label']} seed={row['seed']}")}
            role = CodecRole(row["label"], row["seed"], row["label"] in references)
            found.append(LMResult(codec=role, pattern=name, sig=lm.sig, cell=cell, minutes=lm.minutes))
    return found


def find_lm(source: MeasurementSource, codec_sig: str, name: str, seed: int):
    """LM ``name`` (a key of :data:`LMS`) on the codec's tokens at ``seed`` from ``source`` (None while unfinished)."""
    pattern, extra = LMS[name]
    return source.lm(LMKey(codec_sig, pattern, seed, tuple(extra)), lambda: lm_argv(codec_sig, name, seed))


def _is_depth(name: str) -> bool:
    return name.startswith("depth")


def lm_table(rows: tp.Sequence[tp.Dict[str, tp.Any]], lms: tp.Sequence[tp.Any]) -> str:
    """One line per LM: CE (all codebooks, per codebook, 2..K), CE minus the codec's entropy (what the LM
    gains from context, nats; lower is better), and its gap to each depth LM on the same tokens (2..K)."""
    entropy = {(row["seed"], row["label"]): row["metrics"]["entropy_mean"] * NATS_PER_BIT
               for row in rows if row["metrics"]}
    depth_names = list(dict.fromkeys(lm.pattern for lm in lms if _is_depth(lm.pattern)))
    depth = {(lm.codec.seed, lm.codec.label, lm.pattern): lm.cell for lm in lms if _is_depth(lm.pattern)}
    generated = any("distances" in lm.cell for lm in lms)
    header = ["seed", "codec", "LM", "XP", "valid CE", "CE per codebook", "CE 2..K", "codec entropy (nats)",
              "CE − entropy", f"gap to {' / '.join(depth_names) or 'depth'} (2..K)",
              *(["kernel distance to evaluate [95 %]"] if generated else []), "XP-min"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for lm in lms:
        seed, label = lm.codec.seed, lm.codec.label
        h = entropy.get((seed, label))
        gaps = [_rest(lm.cell) - _rest(depth[(seed, label, name)]) if (seed, label, name) in depth else None
                for name in depth_names]
        cells = [str(seed), label, lm.pattern, lm.sig, f"{lm.cell['valid_ce']:.3f}",
                 " / ".join(f"{v:.3f}" for v in lm.cell["valid_ce_per_codebook"]), f"{_rest(lm.cell):.3f}", _fmt(h),
                 "-" if h is None else f"{lm.cell['valid_ce'] - h:+.3f}",
                 "-" if _is_depth(lm.pattern) else " / ".join(_fmt(g, "+.3f") for g in gaps),
                 *([kernel_text(lm.cell)] if generated else []), _fmt(lm.minutes, ".1f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rest(cell: tp.Dict[str, tp.Any]) -> float:
    """The cell's cross-entropy on codebooks 2..K (what a gap to depth compares)."""
    return gap_cross_entropy(cell, "depth")


def gap_lines(lms: tp.Sequence[tp.Any]) -> tp.List[str]:
    """Per depth LM, pair and seed: each factorised LM's gap to that depth LM on both codecs, and the share
    of the reference's gap the variant closes (:func:`audiocraft_mmd.study.gap_closure`)."""
    lines = []
    for depth_name in dict.fromkeys(lm.pattern for lm in lms if _is_depth(lm.pattern)):
        for variant, reference in LM_PAIRS.items():
            for seed in sorted({lm.codec.seed for lm in lms}):
                pair = [dataclasses.replace(lm, pattern="depth") if lm.pattern == depth_name else lm for lm in lms
                        if lm.codec.seed == seed and lm.codec.label in (variant, reference)
                        and (lm.pattern == depth_name or not _is_depth(lm.pattern))]
                row = gap_closure(pair)
                for pattern in FACTORISED_LMS:
                    keys = gap_keys(pattern, "depth")
                    if keys["closed"] not in row:
                        continue
                    closed = row[keys["closed"]]
                    lines.append(f"- seed {seed}, {variant} against {reference}: {pattern} − {depth_name} (codebooks "
                                 f"2..K) {row[keys['baseline']]:+.3f} → {row[keys['mmd']]:+.3f} nats; share closed: "
                                 + ("undefined (depth is not better on the reference's tokens)" if math.isnan(closed)
                                    else f"{closed:.1%}"))
    return lines


def repeat_lines(rows: tp.Sequence[tp.Dict[str, tp.Any]], lms: tp.Sequence[tp.Any],
                 source: MeasurementSource) -> tp.List[str]:
    """The LMs' run-to-run spread: each LM on the repeated codec at its two LM seeds (CE 2..K), and each
    factorised LM's gap to each depth LM at both."""
    row = next((r for r in rows if r["label"] == REPEAT_CODEC and r["codec"] is not None), None)
    if row is None:
        return []
    first = {lm.pattern: lm.cell for lm in lms if lm.codec.seed == row["seed"] and lm.codec.label == REPEAT_CODEC}
    again = {}
    for name in LMS:
        if name not in first:
            continue
        lm = find_lm(source, row["sig"], name, row["seed"] + REPEAT_SEED_OFFSET)
        if lm is not None:
            again[name] = lm.validation
    seed2 = row["seed"] + REPEAT_SEED_OFFSET
    lines = [f"- {name} on {REPEAT_CODEC} seed={row['seed']}, CE 2..K at LM seeds {row['seed']} / {seed2}: "
             f"{_rest(first[name]):.3f} / {_rest(cell):.3f} (difference {_rest(cell) - _rest(first[name]):+.3f})"
             for name, cell in again.items()]
    for depth_name in (name for name in again if _is_depth(name)):
        for name in (name for name in again if not _is_depth(name)):
            lines.append(f"- {name} − {depth_name} (2..K) at LM seeds {row['seed']} / {seed2}: "
                         f"{_rest(first[name]) - _rest(first[depth_name]):+.3f} / "
                         f"{_rest(again[name]) - _rest(again[depth_name]):+.3f}")
    return lines


# ----------------------------------------------------------------------------------------------------
# The study report's section: every table above and the targets, per variant and seed.

def verdict_lines(rows: tp.Sequence[tp.Dict[str, tp.Any]],
                  other_rows: tp.Optional[tp.Sequence[tp.Dict[str, tp.Any]]] = None) -> tp.List[str]:
    """Per variant: at each seed, the gates on the whole evaluate split (:func:`compare_measured`) and,
    with ``other_rows`` (the same rows measured on other music), the cut there too; then which variants
    meet every gate at every seed."""
    def measured(by_key, seed, label):
        row = by_key.get((seed, label))
        reference = by_key.get((seed, row["reference"])) if row and row["reference"] else None
        return compare_measured(row, reference) if reference else {}

    def cut_text(delta):
        cut = "undefined" if delta["cut"] is None else f"{delta['cut']:.1%}"
        return f"cut {cut} ({'outside' if delta['outside'] else 'inside'} the reference's interval)"

    evaluate = {(row["seed"], row["label"]): row for row in rows}
    other_music = {(row["seed"], row["label"]): row for row in other_rows or []}
    seeds = sorted({row["seed"] for row in rows})
    lines, passing = [], []
    for label in dict.fromkeys(row["label"] for row in rows if row["reference"]):
        parts, met_everywhere = [], True
        for seed in seeds:
            delta = measured(evaluate, seed, label)
            if not delta:
                parts.append(f"seed {seed}: not measured")
                met_everywhere = False
                continue
            text = (f"seed {seed}: {cut_text(delta)}, Δ entropy {delta['entropy']:+.2f} bit, "
                    f"Δ SI-SNR {delta['sisnr']:+.2f} dB")
            met = delta["met"]
            if other_rows is not None:
                other = measured(other_music, seed, label)
                text += f"; other music: {cut_text(other)}" if other else "; other music: not measured"
                met = met and bool(other) and other["met"]
            parts.append(text + f": **{'met' if met else 'not met'}**")
            met_everywhere = met_everywhere and met
        lines.append(f"- {label}: " + "; ".join(parts) + ".")
        if met_everywhere:
            passing.append(label)
    summary = (f"Variants that meet every gate at every seed: {', '.join(passing)}." if passing else
               "No variant meets every gate at every seed.")
    return [f"Gates (against the codec each is compared with, whole split, 10 s segments): fast delay-aligned MI "
            f"cut by at least {MIN_FAST_CUT:.0%} and below the reference's 95 % interval, mean entropy at most "
            f"{MAX_ENTROPY_LOSS_BITS} bit lower, SI-SNR at most {MAX_SISNR_LOSS_DB} dB lower (evaluate stage)"
            + (", and the cut on other music as well." if other_rows is not None else "."), "", summary, "", *lines]


def report_section(source: MeasurementSource, other_data: tp.Optional[str] = None) -> tp.Optional[str]:
    """The markdown section of grids ``independence`` and ``independence_lms`` for ``study report``, from
    ``source`` (:mod:`.measurements`; None before any of its variants has finished): the evaluate stage's
    table, the whole split's, other music's when ``other_data`` was measured, the LMs, and the targets per
    variant and seed."""
    rows = collect(source)
    if not any(row["codec"] is not None and row["reference"] for row in rows):
        return None
    measure(rows, source)
    parts = ["## Making the codebooks independent where an LM pays for it (grid `independence`)", "",
             "The options of docs/research/INDEPENDENCE.md, each against the codec of the same budget and start "
             "(`python -m audiocraft_mmd.grid local independence --jobs 2`; the same tables: "
             "`python -m audiocraft_mmd.study independence --measure --lms`). Evaluate stage (64 one-second "
             "clips; fast/slow pairs a quarter of a clip apart):", "", table(rows), "",
             f"The dependence command on the whole evaluate split ({SEGMENT_SECONDS:g} s segments, slow pairs "
             f"{SEGMENT_SECONDS / 4:g} s apart or more, 95 % jackknife intervals):", "", measured_table(rows), ""]
    other_rows = None
    if other_data is not None and source.has_dependence(dependence_folder(other_data), other_data):
        other_rows = [dict(row) for row in rows]
        measure(other_rows, source, other_data)
        shown = shown_path(other_data)
        parts += [f"The same on other music, not in the training data (`{shown}`):", "",
                  measured_table(other_rows), ""]
    lms = collect_lms(rows, source)
    if lms:
        parts += ["LMs on the tokens of the variants and their references (grid `independence_lms`): validation "
                  "cross-entropy, against the codec's entropy and the depth LM (codebooks 2..K).", "",
                  lm_table(rows, lms), "", *gap_lines(lms), "", *repeat_lines(rows, lms, source), ""]
    parts += ["### Targets (grid `independence`)", "", *verdict_lines(rows, other_rows)]
    return "\n".join(parts)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.study independence",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the tables to this file (default: print them)")
    parser.add_argument("--measure", action="store_true",
                        help="add the dependence command on the whole evaluate split (cached per XP)")
    parser.add_argument("--data", help="with --measure: measure on this manifest folder instead of each codec's "
                        "evaluate split (e.g. other music: egs/NAME/evaluate)")
    parser.add_argument("--lms", action="store_true", help="add the LMs of grid independence_lms")
    parser.add_argument("--generate", action="store_true",
                        help="with --lms: the parallel, delay and depth LMs also generate (timed, and the musicnn "
                        "kernel distance of their generations to the evaluate split; cached per XP)")
    add_generation_options(parser)
    add_source_options(parser)
    args = parser.parse_args(argv)
    source = command_source(args, ["independence", *(argv or [])])
    rows = collect(source)
    text = table(rows) + "\n"
    if args.measure:
        measure(rows, source, args.data)
        text += (f"\n{args.data or 'Whole evaluate split'}, {SEGMENT_SECONDS:g} s segments:\n\n"
                 + measured_table(rows) + "\n")
    if args.lms:
        lms = collect_lms(rows, source, args.generate)
        text += "\nLMs (grid independence_lms):\n\n" + lm_table(rows, lms) + "\n\n" + "\n".join(gap_lines(lms)) + "\n"
        repeats = repeat_lines(rows, lms, source)
        if repeats:
            text += "\nThe LMs' run-to-run spread (another LM seed on the same tokens):\n\n" + "\n".join(repeats) + "\n"
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
