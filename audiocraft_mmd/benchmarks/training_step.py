"""What the independence loss adds to a training step of the paper's codec, with the macro-batch schedule.

Run ``python -m audiocraft_mmd.benchmarks.training_step`` (``--help`` for the options). It builds the
solver of ``solver=compression/encodec_mmd_32khz`` (the paper's model, losses, discriminator and
loss settings) with a batch reduced to fit a CPU, on generated 32 kHz audio, and times in one
process, after warm-up steps:

* the **λ = 0 step**: AudioCraft's own compression step (``CompressionSolver.run_step``: forward,
  discriminator update, balanced backward, optimizer step), the baseline;
* the **schedule**: ``--macro-batch`` M consecutive steps of our solver, the last of which encodes
  the M batches again and adds λ·L_inde on their ``M · B · 47`` rows (N ≥ 4k with the defaults);

* the **row bank** (``mmd.bank=M``): the same solver switched to the bank schedule; after M - 1
  steps fill the bank, a full cycle of M - 1 steps each with the loss on its batch's rows plus the
  bank's (M · B · 47 rows, the same N), one of which recomputes the bank's sums from scratch;

and reports the macro step's cost and the schedule's amortised cost, each as a ratio to the λ = 0
step measured in the same run, then times the macro step's two parts apart on M fresh batches:
re-encoding (checkpointed encoder forward and backward) and the estimator (forward + backward on
the N rows), and the bank's mean step over its cycle; with ``--per-step-steps``, also the per-step
loss (``mmd.macro_batch=0``: each step's own batch). Times are wall-clock (medians for the λ = 0
and plain steps; on CUDA, after synchronising); the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import statistics
import typing as tp

import torch

from ..losses.bank import RowBank
from ..solvers.macro_batch import MacroBatch
from ..utils.step_benchmark import add_run_arguments, benchmark_data, scalars, timed


def build_solver(egs: Path, dora_dir: Path, batch_size: int, macro_batch: int, overrides: tp.Sequence[str],
                 ema_device: str = "cpu"):
    from .. import train
    train.main.dora.dir = dora_dir
    argv = ["solver=compression/encodec_mmd_32khz", f"dataset.batch_size={batch_size}", "dataset.num_workers=0",
            f"mmd.macro_batch={macro_batch}", f"optim.updates_per_epoch={macro_batch}",
            f"optim.ema.device={ema_device}",
            "prepare_data.source=null", *[f"datasource.{split}={egs / split}" for split in
                                          ("train", "valid", "evaluate", "generate")], *overrides]
    xp = train.main.get_xp(argv)
    with xp.enter():
        return train.get_solver(xp.cfg)


def measure(solver, macro_batch: int, baseline_steps: int, warmup: int,
            per_step_steps: int = 0) -> tp.Dict[str, tp.Any]:
    """Times the λ = 0 step, the macro-batch schedule and the row bank (see the module docstring) and,
    with ``per_step_steps`` > 0, that many steps with the loss on each step's own batch
    (``mmd.macro_batch=0``). ``*_metrics``: the last step's metrics of each mode."""
    from audiocraft.solvers.compression import CompressionSolver

    batches = iter(solver.dataloaders["train"])
    solver.rng = torch.Generator().manual_seed(1234)  # AudioCraft seeds it per epoch, for the adversary
    results: tp.Dict[str, tp.Any] = {}

    def run() -> None:
        for index in range(warmup):
            CompressionSolver.run_step(solver, index, next(batches), {})
        baseline_metrics: dict = {}
        baseline = [timed(lambda: baseline_metrics.update(CompressionSolver.run_step(solver, 0, next(batches), {})))
                    for _ in range(baseline_steps)]
        schedule, rows = [], 0.0
        for index in range(macro_batch):  # steps 0 .. M-1: the last one completes the macro-batch
            metrics: dict = {}

            def step():
                metrics.update(solver.run_step(index, next(batches), {}))
            schedule.append(timed(step))
            rows = metrics.get("mmd_rows", rows)
        schedule_metrics = dict(metrics)
        # The macro step's two parts, timed apart on M fresh batches: re-encoding (forward, and the
        # backward through the checkpointed encoder) and the estimator alone (forward + backward).
        macro = MacroBatch(macro_batch)
        for _ in range(macro_batch):
            macro.add(next(batches).to(solver.device))
        holder: dict = {}
        encode = timed(lambda: holder.update(streams=macro.streams(solver.model, solver.cfg.mmd.source)))
        rows_streams = holder["streams"].detach().requires_grad_(True)
        estimator = timed(lambda: solver.mmd_loss(rows_streams).backward())
        encode += timed(lambda: holder["streams"].backward(rows_streams.grad))
        solver.model.zero_grad()
        # The bank schedule on the same solver (what mmd.bank=M builds): fill, then time one cycle.
        solver.macro_batch, solver.row_bank = None, RowBank(macro_batch - 1)
        bank_metrics: dict = {}
        bank = []
        for index in range(2 * (macro_batch - 1)):
            duration = timed(lambda: bank_metrics.update(solver.run_step(index, next(batches), {})))
            if index >= macro_batch - 1:
                bank.append(duration)
        # The per-step loss (mmd.macro_batch=0): each step's own batch, no bank.
        solver.row_bank = None
        per_step_metrics: dict = {}
        per_step = [timed(lambda: per_step_metrics.update(solver.run_step(index, next(batches), {})))
                    for index in range(per_step_steps)]
        results.update(baseline=baseline, schedule=schedule, rows=rows, reencode=encode, estimator=estimator,
                       bank=bank, bank_rows=bank_metrics["mmd_rows"], per_step=per_step,
                       metrics={"lambda0": scalars(baseline_metrics), "schedule": scalars(schedule_metrics),
                                "bank": scalars(bank_metrics), "per_step": scalars(per_step_metrics)})

    print(f"timing {warmup} warm-up + {baseline_steps} λ = 0 steps, then {macro_batch} steps of the schedule ...",
          flush=True)
    solver.run_stage("train", run)
    step0 = statistics.median(results["baseline"])
    plain = statistics.median(results["schedule"][:-1])
    macro = results["schedule"][-1]
    return {
        "rows": results["rows"], "lambda0_step_s": step0, "schedule_plain_step_s": plain, "macro_step_s": macro,
        "macro_step_ratio": macro / step0,
        "schedule_amortised_ratio": sum(results["schedule"]) / (macro_batch * step0),
        "reencode_s": results["reencode"], "estimator_s": results["estimator"],
        # The estimator's cost over the λ = 0 training compute that yields as many rows.
        "estimator_ratio": (macro_batch * step0 + results["estimator"]) / (macro_batch * step0),
        "bank_rows": results["bank_rows"], "bank_step_s": statistics.median(results["bank"]),
        "bank_amortised_ratio": statistics.mean(results["bank"]) / step0,
        "baseline_steps_s": results["baseline"], "schedule_steps_s": results["schedule"],
        "bank_steps_s": results["bank"],
        **({"per_step_step_s": statistics.median(results["per_step"]),
            "per_step_ratio": statistics.median(results["per_step"]) / step0,
            "per_step_steps_s": results["per_step"]} if results["per_step"] else {}),
        **{f"{mode}_metrics": metrics for mode, metrics in results["metrics"].items()},
    }


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> tp.Dict[str, tp.Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=3, help="clips per step (the paper: 64 over 8 GPUs)")
    parser.add_argument("--macro-batch", type=int, default=32, help="M, steps per loss step (the paper: 32)")
    parser.add_argument("--baseline-steps", type=int, default=8, help="timed λ = 0 steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--per-step-steps", type=int, default=0,
                        help="also time this many steps with the loss on each step's own batch (mmd.macro_batch=0)")
    add_run_arguments(parser, "seanet.n_filters=8")
    args = parser.parse_args(argv)
    with benchmark_data(args.threads) as egs:
        solver = build_solver(egs, egs.parent / "dora", args.batch_size, args.macro_batch, args.overrides)
        results = {"batch_size": args.batch_size, "macro_batch": args.macro_batch, "threads": torch.get_num_threads(),
                   "overrides": list(args.overrides), **measure(solver, args.macro_batch, args.baseline_steps,
                                                               args.warmup, args.per_step_steps)}
    print(f"rows in the macro-batch loss: {results['rows']:.0f}")
    print(f"λ = 0 step (AudioCraft's): {results['lambda0_step_s']:.2f} s")
    print(f"schedule, plain step: {results['schedule_plain_step_s']:.2f} s "
          f"({results['schedule_plain_step_s'] / results['lambda0_step_s']:.3f}x)")
    print(f"schedule, macro step: {results['macro_step_s']:.2f} s ({results['macro_step_ratio']:.2f}x)")
    print(f"schedule, amortised over {args.macro_batch} steps: "
          f"{results['schedule_amortised_ratio']:.3f}x the λ = 0 step")
    print(f"  of which re-encoding {results['reencode_s']:.2f} s and the estimator {results['estimator_s']:.2f} s "
          f"(forward + backward on {results['rows']:.0f} rows): {results['estimator_ratio']:.3f}x the λ = 0 "
          "compute of those rows")
    print(f"row bank (mmd.bank={args.macro_batch}) on {results['bank_rows']:.0f} rows: "
          f"step {results['bank_step_s']:.2f} s "
          f"(median), {results['bank_amortised_ratio']:.3f}x the λ = 0 step on average over a cycle")
    if args.per_step_steps:
        print(f"per-step loss (mmd.macro_batch=0) on {results['per_step_metrics'].get('mmd_rows', 0):.0f} rows: step "
              f"{results['per_step_step_s']:.2f} s ({results['per_step_ratio']:.3f}x the λ = 0 step)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
