"""``docs/research/RESULTS.md`` and its figures from the study's measurements (:mod:`audiocraft_mmd.study`)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
import typing as tp

from ..metrics.lm_measures import steps_text
from .results import (ALIGNMENT_NAMES, FACTORISED_LMS, JOINT_LMS, SCALES, StudyResults, gap_closure, gap_keys,
                      target_lines)

FIGURE_NAMES = {
    "dependence": "dependence_vs_lambda.png",
    "reconstruction": "reconstruction_vs_lambda.png",
    "lm": "lm_quality_vs_speed.png",
    "lag": "dependence_vs_lag.png",
}


def _spread(values: tp.Sequence[float]) -> str:
    """``mean ± half-range`` over seeds (the range, not a standard error: two seeds)."""
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "-"
    return f"{statistics.fmean(values):.3f} ± {(max(values) - min(values)) / 2:.3f}"


def _codecs_in_order(results: StudyResults) -> tp.List[tp.Any]:
    return sorted(results.codecs, key=lambda c: (c.spec.weight, c.spec.alignment, c.spec.bandwidth, c.spec.seed))


def markdown_table(header: tp.Sequence[str], rows: tp.Iterable[tp.Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def interval_text(value: tp.Tuple[float, float, float]) -> str:
    return f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]"


def codec_table(results: StudyResults) -> str:
    rows = []
    for c in _codecs_in_order(results):
        rows.append([
            c.spec.name, c.sig, f"{c.si_snr_db:.2f}", f"{c.mel_distance:.3f}",
            f"{c.entropy_mean:.2f}", f"{min(c.entropy):.2f}", f"{min(c.usage):.2f}",
            *[interval_text(c.mi[name]) for name in ALIGNMENT_NAMES], f"{c.normalized_mi['delay']:.4f}",
            f"{c.kernel_statistic:.4f}", f"{c.minutes:.1f}"])
    return markdown_table(["codec", "XP", "SI-SNR (dB)", "mel distance", "entropy mean (bit)", "entropy min",
                           "usage min", "MI parallel (bit) [95 %]", "MI delay (bit) [95 %]", "normalised MI delay",
                           "loss statistic", "train min"], rows)


def entropy_table(results: StudyResults) -> str:
    num_q = max(len(c.entropy) for c in results.codecs)
    rows = [[c.spec.name, *[f"{h:.2f} / {u:.2f}" for h, u in zip(c.entropy, c.usage)]]
            for c in _codecs_in_order(results)]
    return markdown_table(["codec", *[f"q{k + 1} entropy / usage" for k in range(num_q)]], rows)


def lm_table(results: StudyResults) -> str:
    rows = []
    for lm in sorted(results.lms, key=lambda lm: (lm.codec.seed, not lm.codec.is_baseline, lm.pattern)):
        cell = lm.cell
        rows.append([lm.codec.name, lm.pattern, lm.sig, f"{cell['valid_ce']:.3f}",
                     " / ".join(f"{v:.3f}" for v in cell["valid_ce_per_codebook"]),
                     steps_text(cell["steps_per_second"], cell.get("temporal_steps_per_second"),
                                cell.get("depth_steps_per_second")),
                     f"{cell['gen_seconds']:.2f}", f"{cell['rtf']:.3f}", kernel_text(cell), f"{lm.minutes:.1f}"])
    return markdown_table(["codec", "pattern", "XP", "valid CE (nats)", "CE per codebook",
                   "AR steps / s audio (temporal + depth)", "generation (s)", "RTF",
                   "kernel distance to evaluate [95 %]", "train min"], rows)


def kernel_text(cell: tp.Dict[str, tp.Any]) -> str:
    """An LM's musicnn kernel distance of its generations to the evaluate split, with its 95 % interval."""
    if cell.get("kernel_distance") is None:
        return "-"
    distances = cell["distances"]
    return (f"{cell['kernel_distance']:.3g} [{distances['musicnn_kernel_ci_low']:.3g}, "
            f"{distances['musicnn_kernel_ci_high']:.3g}]")


def probe_table(results: StudyResults) -> str:
    rows = []
    for probe, codec, reference in results.probes:
        change = 1 - codec.mi["delay"][0] / reference.mi["delay"][0]
        rows.append([probe.question, codec.spec.name, codec.sig, reference.spec.name, f"{codec.si_snr_db:.2f}",
                     f"{codec.si_snr_db - reference.si_snr_db:+.2f}", f"{codec.entropy_mean:.2f}",
                     f"{codec.entropy_mean - reference.entropy_mean:+.2f}", interval_text(codec.mi["delay"]),
                     interval_text(reference.mi["delay"]), f"{change:.1%}",
                     f"{codec.kernel_statistic:.4f} / {reference.kernel_statistic:.4f}"])
    return markdown_table(["question", "codec", "XP", "compared with", "SI-SNR (dB)", "Δ SI-SNR", "entropy mean",
                   "Δ entropy", "MI delay [95 %]", "reference MI delay", "MI reduction",
                   "loss statistic / reference's"], rows)


def lm_probe_tables(results: StudyResults) -> tp.Tuple[str, str]:
    """The probes' LMs, then per probe the cross-entropy gaps to unroll and the share the MMD codec closes."""
    rows = [[lm.probe.question, lm.codec.name, lm.pattern, lm.sig, f"{lm.cell['valid_ce']:.3f}",
             " / ".join(f"{v:.3f}" for v in lm.cell["valid_ce_per_codebook"]), f"{lm.minutes:.1f}"]
            for lm in results.lm_probes]
    lms = markdown_table(["LM probe", "codec", "pattern", "XP", "valid CE (nats)", "CE per codebook", "train min"],
                         rows)
    gap_rows = []
    for probe, seed in dict.fromkeys((lm.probe, lm.codec.seed) for lm in results.lm_probes):
        gaps = gap_closure([lm for lm in results.lm_probes if (lm.probe, lm.codec.seed) == (probe, seed)])
        for joint in JOINT_LMS:
            for pattern in FACTORISED_LMS:
                keys = gap_keys(pattern, joint)
                if keys["baseline"] in gaps:
                    closed = gaps[keys["closed"]]
                    gap_rows.append([probe.question, str(seed), pattern, joint, f"{gaps[keys['baseline']]:+.3f}",
                                     f"{gaps[keys['mmd']]:+.3f}",
                                     "undefined (no gap)" if math.isnan(closed) else f"{closed:.1%}"])
    gap_table = markdown_table(["LM probe", "seed", "pattern", "gap to (joint LM)", "CE gap, baseline", "CE gap, MMD",
                        "share of the gap closed"], gap_rows)
    return lms, gap_table


def lag_table(results: StudyResults) -> str:
    lags = [entry["lag"] for entry in results.lagged[0][1]["lagged"]]
    rows = [[spec.name, *[f"{e['cross_mi']:.3f} / {'-' if e['auto_mi'] is None else format(e['auto_mi'], '.3f')}"
                          for e in report["lagged"]]] for spec, report in results.lagged]
    rate = results.lagged[0][1]["frame_rate"]
    return markdown_table(["codec", *[f"lag {lag} ({lag / rate:g} s)" for lag in lags]], rows)


def comparison_table(comparison: tp.Dict[str, tp.Any]) -> str:
    per_seed = comparison.get("per_seed", {})
    if not per_seed:
        return "(no seed has both codecs)"
    keys = [("mi_reduction_delay", "MI reduction, delay alignment"),
            ("mi_reduction_parallel", "MI reduction, parallel alignment"),
            ("nmi_reduction_delay", "normalised MI reduction, delay"),
            ("entropy_change_bits", "mean entropy change (bit)"),
            ("sisnr_loss_db", "SI-SNR loss (dB)"), ("mel_change", "mel distance change"),
            *[(gap_keys(pattern, joint)[kind], label.format(pattern=pattern, joint=joint, codebooks=codebooks))
              for joint, codebooks in [("unroll", ""), ("depth", " (codebooks 2..K)")] for pattern in FACTORISED_LMS
              for kind, label in [("baseline", "CE gap {pattern} − {joint}{codebooks}, baseline"),
                                  ("mmd", "CE gap {pattern} − {joint}{codebooks}, MMD"),
                                  ("closed", "share of the {pattern} gap to {joint} closed")]]]
    seeds = sorted(per_seed)
    rows = []
    for key, label in keys:
        values = [per_seed[seed].get(key) for seed in seeds]
        present = [v for v in values if v is not None]
        present = [v for v in present if not math.isnan(v)]
        rows.append([label, *["-" if v is None else "undefined" if math.isnan(v) else f"{v:.3f}" for v in values],
                     _spread(present) if present else "-"])
    return markdown_table(["", *[f"seed {seed}" for seed in seeds], "mean ± half-range"], rows)


def plot_figures(results: StudyResults, folder: Path) -> tp.Dict[str, Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = {key: folder / name for key, name in FIGURE_NAMES.items()}
    first_seed = min((c.spec.seed for c in results.codecs), default=None)
    sweep = [c for c in results.codecs if c.spec.seed == first_seed]
    baseline = [c for c in sweep if c.spec.is_baseline]
    variants = sorted({(c.spec.alignment, c.spec.bandwidth) for c in sweep if not c.spec.is_baseline})
    weights = sorted({c.spec.weight for c in sweep if not c.spec.is_baseline})
    # λ on a log axis, the baseline drawn one decade below the smallest λ.
    zero_at = weights[0] / 10 if weights else 0.1

    def x_of(codec) -> float:
        return zero_at if codec.spec.is_baseline else codec.spec.weight

    def lines(ax, value, error=None):
        for alignment, bandwidth in variants:
            mine = sorted(baseline + [c for c in sweep if (c.spec.alignment, c.spec.bandwidth) == (alignment, bandwidth)
                                      and not c.spec.is_baseline], key=x_of)
            ys = [value(c) for c in mine]
            if error is None:
                ax.plot([x_of(c) for c in mine], ys, marker="o", label=f"loss {alignment}, {bandwidth}")
            else:
                lows, highs = zip(*[error(c) for c in mine])
                ax.errorbar([x_of(c) for c in mine], ys, yerr=[[y - lo for y, lo in zip(ys, lows)],
                                                                [hi - y for y, hi in zip(ys, highs)]],
                            marker="o", capsize=3, label=f"loss {alignment}, {bandwidth}")
        ax.set_xscale("log")
        ax.set_xticks([zero_at, *weights], ["0", *[f"{w:g}" for w in weights]])
        ax.set_xlabel("λ")

    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, name in zip(axes, ALIGNMENT_NAMES):
        lines(ax, lambda c: c.mi[name][0], lambda c: c.mi[name][1:])
        ax.set_ylabel(f"mean pairwise MI, {name} alignment (bit)")
        ax.set_title(f"Dependence under the {name} alignment")
    lines(axes[2], lambda c: c.entropy_mean)
    axes[2].set_ylabel("mean codebook entropy (bit)")
    axes[2].set_title("Codebook entropy")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(paths["dependence"], dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    lines(axes[0], lambda c: c.si_snr_db)
    axes[0].set_ylabel("SI-SNR on the evaluate split (dB)")
    lines(axes[1], lambda c: c.mel_distance)
    axes[1].set_ylabel("mel distance on the evaluate split")
    axes[0].legend(fontsize=8)
    figure.suptitle("Reconstruction against λ")
    figure.tight_layout()
    figure.savefig(paths["reconstruction"], dpi=110)
    plt.close(figure)

    if results.lagged:
        figure, ax = plt.subplots(figsize=(7, 4.5))
        for index, (spec, report) in enumerate(results.lagged):
            rate = report["frame_rate"]
            # lag 0 drawn at half a frame, on the log axis
            lags = [max(e["lag"], 0.5) / rate for e in report["lagged"]]
            style = "-" if spec.is_baseline else "--"
            ax.plot(lags, [e["cross_mi"] for e in report["lagged"]], style, marker="o", color=f"C{index}",
                    label=f"{spec.name}: across codebooks")
            auto = [(x, e["auto_mi"]) for x, e in zip(lags, report["lagged"]) if e["auto_mi"] is not None]
            ax.plot(*zip(*auto), style, marker="x", color=f"C{index}", alpha=0.5,
                    label=f"{spec.name}: same codebook")
        ax.set_xscale("log")
        ax.set_xlabel("time between the two codes (s; lag 0 drawn at half a frame)")
        ax.set_ylabel("mean MI (bit)")
        ax.set_title("Dependence against the time between codes", fontsize=10)
        ax.legend(fontsize=6)
        figure.tight_layout()
        figure.savefig(paths["lag"], dpi=110)
        plt.close(figure)
    else:
        paths.pop("lag")

    figure, ax = plt.subplots(figsize=(6.5, 4.5))
    for lm in results.lms:
        label = "baseline" if lm.codec.is_baseline else "MMD"
        ax.scatter(lm.cell["rtf"], lm.cell["valid_ce"], marker="o" if lm.codec.is_baseline else "s",
                   color={"parallel": "C0", "delay": "C1", "unroll": "C2", "depth": "C4"}.get(lm.pattern, "C3"))
        ax.annotate(f"{lm.pattern} {label} s{lm.codec.seed} ({lm.cell['steps_per_second']:.0f} steps/s)",
                    (lm.cell["rtf"], lm.cell["valid_ce"]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("measured real-time factor of generation (lower is faster)")
    ax.set_ylabel("validation cross-entropy (nats, mean over codebooks)")
    ax.set_title("LM quality against speed\n(circles: baseline codec, squares: MMD codec)", fontsize=10)
    figure.tight_layout()
    figure.savefig(paths["lm"], dpi=110)
    plt.close(figure)
    return paths


def write_report(results: StudyResults, comparison: tp.Dict[str, tp.Any], out: Path, figures: Path,
                 discussion: tp.Optional[Path], sections: tp.Sequence[str] = (), measured_on: str = "",
                 measurements: str = "docs/research/measurements") -> None:
    """Writes the markdown report to ``out`` and the figures to ``figures`` (replacing earlier ones);
    ``sections`` (markdown) go after the targets, before the discussion (a hand-written file, copied in).
    ``measured_on``: the date of the latest measurement shown, ``measurements``: their folder as the
    report names it; the report depends on nothing else, so the same measurements give the same file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    option = "" if results.scale_name == "small" else f" --scale {results.scale_name}"
    scale = SCALES[results.scale_name]
    parts = [
        "# Reproduction study: does the independence loss deliver what the paper claims?",
        "",
        f"Generated by `python -m audiocraft_mmd.study report{option}` from the measurements stored in "
        f"`{measurements}/` (one file per XP, the latest measured on {measured_on or 'no date: none stored'}), "
        f"which it takes from the XPs of the grids `{scale.codec_grid}` and `{scale.lm_grid}` (run them all "
        f"with `python -m audiocraft_mmd.study run{option}`); `--from-measurements` rebuilds this file from them "
        "alone. Every number below is measured; nothing is edited by hand except the discussion at the end, "
        "which is a file of its own.",
        "",
    ]
    probe_minutes = [p[1].minutes for p in results.probes if p[1] not in results.codecs]
    parts += [f"Compute: {results.minutes:.0f} XP-minutes of training and evaluation for the "
              f"{len(results.codecs)} codecs and {len(results.lms)} LMs of the study, plus {sum(probe_minutes):.0f} "
              "for the codec probes and "
              f"{sum(lm.minutes for lm in results.lm_probes):.0f} for the {len(results.lm_probes)} LM probes "
              "(the sum of the XPs' stage durations, each XP's own wall-clock: `study run --jobs 2` runs two at a "
              "time, one core each).", ""]
    if results.missing_codecs or results.missing_lms:
        parts += ["**Incomplete:** not finished yet: " + "; ".join(results.missing_codecs + results.missing_lms) + ".",
                  ""]
    if results.codecs:
        paths = plot_figures(results, figures)
        rel = {key: Path(path).relative_to(out.parent) if Path(path).is_relative_to(out.parent) else path
               for key, path in paths.items()}
        parts += [
            "## Codecs",
            "",
            "SI-SNR and mel distance: the evaluate stage (`reconstruction` plugin) on the evaluate split. "
            "Entropy, usage and mean pairwise MI: `python -m audiocraft_mmd.dependence` on the whole evaluate "
            "split (bias-corrected MI; the interval averages the pairs' jackknife half-widths). Loss statistic: "
            "the loss's unclamped MMD² estimate in the evaluate stage, with the codec's own loss options "
            "(alignment, bandwidths; the baseline's: delay, dim).",
            "",
            codec_table(results),
            "",
            "Per codebook (entropy in bits of 8 / share of the 256 codes used):",
            "",
            entropy_table(results),
            "",
            f"![dependence against λ]({rel['dependence']})",
            "",
            f"![reconstruction against λ]({rel['reconstruction']})",
            "",
        ]
    if results.selection is not None:
        parts += ["## The best MMD codec", "",
                  f"**{results.selection.best.name}**: {results.selection.reason} (the evaluate stage's figures, "
                  f"as `{scale.lm_grid}` selected it; the LMs are trained on its tokens).", ""]
    if results.lms:
        parts += [
            "## Language models",
            "",
            "Cross-entropy: the last validation epoch (nats per token, mean over codebooks). Steps per second: "
            "the pattern's autoregressive steps per second of audio. Generation: wall-clock of sampling and "
            "decoding the clips, timed in the report's run; RTF = that / seconds generated. Kernel distance: "
            "musicnn embeddings of the generations against the evaluate split (lower is closer).",
            "",
            lm_table(results),
            "",
            f"![LM quality against speed]({rel['lm']})",
            "",
        ]
    if results.lagged:
        parts += ["## Dependence across time", "",
                  "Mean MI (bit) between codebook i at frame t and codebook j at frame t − lag, inside "
                  f"{scale.dependence_segment:g}-second segments of the evaluate split "
                  "(`python -m audiocraft_mmd.dependence --lags ...`, bias-corrected as above, no interval): "
                  "across codebooks (i ≠ j) / same codebook (i = j). Lag 0 across codebooks is "
                  "the parallel-aligned MI. Dependence that survives lags of seconds comes from what the piece is "
                  "(instruments, loudness): an LM knows it from earlier frames, whatever its pattern.", "",
                  lag_table(results), "", f"![dependence against the lag]({rel['lag']})", ""]
    if results.lm_probes:
        lms, gaps = lm_probe_tables(results)
        parts += ["## LM probes: does the LM comparison depend on the LM's budget?", "",
                  "LMs on each seed's baseline and best MMD codec with other training overrides (grid "
                  "`study_lm_probes`); cross-entropy of the last validation epoch.", "", lms, "", gaps, ""]
    if results.probes:
        parts += ["## Probes: why (not)?", "",
                  "One change at a time (grid `study_probes`), each compared with the codec it changes; figures "
                  "measured as in the codec table.", "", probe_table(results), ""]
    parts += ["## Main comparison: baseline vs best MMD codec, per seed", "", comparison_table(comparison), "",
              "## Targets", "", *target_lines(comparison), ""]
    for section in sections:
        parts += [section.rstrip(), ""]
    if discussion is not None and discussion.exists():
        parts += [discussion.read_text().rstrip(), ""]
    out.write_text("\n".join(parts))
