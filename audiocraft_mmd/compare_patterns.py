"""Quality against speed of MusicGen's codebook patterns, on one or more codecs, with the same budget.

    python -m audiocraft_mmd.compare_patterns --codec //sig/A [--codec //sig/B] \
        --patterns parallel,delay,unroll,coarse_first [--out comparison] [-- OVERRIDES...]

For each codec x pattern, the LM XP is ``solver=musicgen/mmd compression_model_checkpoint=<codec>
codebooks_pattern.modeling=<pattern> OVERRIDES`` (plus ``pattern_consistency.allow_mismatch=true``
when the pattern does not match the codec's loss alignment): every cell shares the LM size, data,
number of updates and seed, only the pattern differs. A finished XP (all epochs in its history) is
reused; a missing or unfinished one is trained with ``dora run`` (``--no-train`` only lists them).

Reported per cell: validation cross-entropy per codebook and in total (last epoch, nats),
autoregressive steps per second of audio (for ``depth``, the temporal steps plus the per-frame depth
steps, shown separately and summed), and, measured in this run, the wall-clock of generating
``--gen-samples`` x ``--gen-duration`` s (LM sampling + decoding, same seed and thread count
for every cell) and its real-time factor (wall-clock / seconds of audio generated). Writes
``comparison.md``, ``comparison.json`` and ``comparison.png`` (cross-entropy against real-time factor).
The generated clips are also compared with the LM's evaluate split: musicnn kernel and Fréchet
distances (:func:`audiocraft_mmd.metrics.music_distance.distance_to_source`; ``--no-distance`` skips them).
With few samples these are noisy: read their intervals in ``comparison.json``, raise ``--gen-samples``.

With ``parallel`` and ``depth`` among the patterns, the report adds the price of the parallel
factorisation per codec (:mod:`audiocraft_mmd.metrics.factorisation_price`; how to read it:
docs/MUSICGEN.md). ``--lm-seeds N`` trains every cell at N LM seeds (the XP's seed, then +1, ...)
and reports the price's LM-seed range beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
import typing as tp

import torch

from .metrics.factorisation_price import price_markdown, prices_by_codec
from .metrics.lm_measures import Cell, lm_overrides, measure_lm, steps_text
from .utils.progress import track
from .utils.xps import is_finished, run_xp

logger = logging.getLogger(__name__)


def train_xp(overrides: tp.Sequence[str]) -> None:
    """Runs ``dora run OVERRIDES`` from the repository root (resumes an unfinished XP)."""
    logger.info("Training: dora run %s", " ".join(overrides))
    code = run_xp(overrides, cwd=Path(__file__).resolve().parents[1])
    if code != 0:
        raise SystemExit(f"dora run {' '.join(overrides)} failed (exit code {code}); see the XP's solver.log.0")


def markdown(cells: tp.List[Cell], budget: str) -> str:
    num_q = max(len(c.valid_ce_per_codebook) for c in cells)
    header = ["codec", "pattern", "LM seed", "LM XP", "matches codec alignment", "valid CE",
              *[f"CE q{k + 1}" for k in range(num_q)], "AR steps / s audio (temporal + depth)", "generation (s)", "RTF",
              "kernel distance", "Fréchet distance"]
    lines = [budget, "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for c in cells:
        seed = "-" if c.lm_seed is None else str(c.lm_seed)
        row = [c.codec, c.pattern, seed, c.sig, "yes" if c.consistent else "no", f"{c.valid_ce:.3f}",
               *[f"{v:.3f}" for v in c.valid_ce_per_codebook],
               steps_text(c.steps_per_second, c.temporal_steps_per_second, c.depth_steps_per_second),
               f"{c.gen_seconds:.2f}", f"{c.rtf:.2f}",
               *["-" if v is None else f"{v:.3g}" for v in (c.kernel_distance, c.frechet_distance)]]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot(cells: tp.List[Cell], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    markers = "osD^v<>"
    for index, codec in enumerate(dict.fromkeys(c.codec for c in cells)):
        mine = [c for c in cells if c.codec == codec]
        ax.scatter([c.rtf for c in mine], [c.valid_ce for c in mine], marker=markers[index % len(markers)],
                   label=codec)
        for c in mine:
            ax.annotate(c.pattern, (c.rtf, c.valid_ce), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("real-time factor of generation (lower is faster)")
    ax.set_ylabel("validation cross-entropy (nats, lower is better)")
    ax.set_title("Codebook patterns: quality vs speed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: tp.Optional[tp.List[str]] = None) -> tp.List[Cell]:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.compare_patterns",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--codec", action="append", required=True, help="//sig/SIG or checkpoint (repeatable)")
    parser.add_argument("--patterns", default="parallel,delay,unroll,coarse_first")
    parser.add_argument("--out", type=Path, default=Path("comparison"))
    parser.add_argument("--gen-duration", type=float, default=2., help="seconds generated per sample")
    parser.add_argument("--gen-samples", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2036, help="generation seed (training uses the XP's)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads while timing generation")
    parser.add_argument("--lm-seeds", type=int, default=1,
                        help="LM seeds per cell (the XP's seed, then +1, ...), for the LM-seed spread")
    parser.add_argument("--no-train", action="store_true", help="only use finished XPs; list missing ones")
    parser.add_argument("--no-distance", action="store_true",
                        help="skip the musicnn distances of the generations to the evaluate split")
    parser.add_argument("overrides", nargs="*", help="Dora overrides shared by every LM XP (after --)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from audiocraft.modules.transformer import set_efficient_attention_backend
    from . import train
    set_efficient_attention_backend("torch")
    torch.set_num_threads(args.threads)
    patterns = [p.strip() for p in args.patterns.split(",") if p.strip()]
    if args.lm_seeds < 1:
        parser.error(f"--lm-seeds must be at least 1, got {args.lm_seeds}")
    plan = []
    for codec in args.codec:
        for pattern in patterns:
            overrides = lm_overrides(codec, pattern, args.overrides)
            first_seed = int(train.main.get_xp(overrides).cfg.seed)
            for index in range(args.lm_seeds):  # the first seed keeps the overrides as given: its XP is reused
                seeded = overrides if index == 0 else [*overrides, f"seed={first_seed + index}"]
                plan.append((codec, pattern, seeded, train.main.get_xp(seeded)))
    missing = [item for item in plan if not is_finished(item[3])]
    if missing and args.no_train:
        for _, _, overrides, _ in missing:
            print("missing: dora run " + " ".join(overrides))
        raise SystemExit(1)
    for _, _, overrides, _ in track(missing, "compare_patterns: train", note=lambda item: f"{item[1]} on {item[0]}"):
        train_xp(overrides)
    cells = [measure_lm(codec, pattern, train.main.get_xp(overrides), args.gen_samples, args.gen_duration, args.seed,
                        distance=not args.no_distance)
             for codec, pattern, overrides, _ in track(plan, "compare_patterns: measure",
                                                       note=lambda item: f"{item[1]} on {item[0]}")]
    cfg = plan[0][3].cfg
    budget = (f"Same budget for every cell: LM {cells[0].lm_params:,} parameters "
              f"(dim {cfg.transformer_lm.dim}, {cfg.transformer_lm.num_layers} layers), "
              f"{cfg.optim.epochs} epochs x {cfg.optim.updates_per_epoch} updates of "
              f"{cfg.dataset.batch_size} x {cfg.dataset.segment_duration} s segments, seed {cfg.seed}, "
              f"data {cfg.datasource.train}; generation: {args.gen_samples} x {args.gen_duration} s, "
              f"seed {args.seed}, {args.threads} threads, CPU.")
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(cells, budget)
    prices = prices_by_codec(cells)
    for codec, price in prices.items():
        table += "\n" + price_markdown(codec, price)
    (args.out / "comparison.md").write_text(table)
    (args.out / "comparison.json").write_text(json.dumps([dataclasses.asdict(c) for c in cells], indent=2))
    (args.out / "price.json").write_text(json.dumps({codec: price.as_dict() for codec, price in prices.items()},
                                                    indent=2))
    plot(cells, args.out / "comparison.png")
    print(table)
    return cells


if __name__ == "__main__":
    main()
