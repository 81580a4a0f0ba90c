"""What the loss given the past costs against the paper's loss, per training step of the main job.

Run ``python -m audiocraft_mmd.benchmarks.conditional_step`` (``--help`` for the options). It builds the
solver of ``solver=compression/mmd`` (the main job: its model, losses and batch) with
``mmd.condition=past`` on generated audio, and times in one process, after warm-up steps, training
steps of the same solver in turn under each form, so that a change of the machine's load hits every
form alike:

* ``paper``: the predictor switched off, the loss on the aligned streams (``mmd.condition=none``);
* ``past``: the predictor's update, then the loss on the innovations (``mmd.condition=past``);
* ``predictability``: the predictor's update and λp · NLL on the encoder, the loss on the streams
  (``mmd.condition=none mmd.predictability=1``);
* ``neighbours``: the predictor's update, then joint against the conditional product among nearest
  contexts (``mmd.condition=neighbours``; its estimate is the conditional product's own, whatever
  ``mmd.estimator`` says).

Reports each form's median step time and its ratio to the paper loss's step: the median over rounds
of the ratio within a round (one step of each form), all in the same run.
Times are wall-clock (on CUDA, after synchronising); the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import statistics
import typing as tp

import omegaconf
import torch

from ..utils.step_benchmark import add_run_arguments, benchmark_data, scalars, timed

FORMS = ("paper", "past", "predictability", "neighbours")


def build_solver(egs: Path, dora_dir: Path, overrides: tp.Sequence[str]):
    from .. import train
    train.main.dora.dir = dora_dir
    argv = ["solver=compression/mmd", "mmd.condition=past", "dataset.num_workers=0", "prepare_data.source=null",
            *[f"datasource.{split}={egs / split}" for split in ("train", "valid", "evaluate", "generate")],
            *overrides]
    xp = train.main.get_xp(argv)
    with xp.enter():
        return train.get_solver(xp.cfg)


def use_form(solver, form: str, innovations_loss, past_predictor) -> None:
    """Switches a solver built with ``mmd.condition=past`` to ``form`` (see the module docstring)."""
    solver.past_predictor = None if form == "paper" else past_predictor
    solver.innovations_loss = innovations_loss if form == "past" else None
    with omegaconf.open_dict(solver.cfg):
        solver.cfg.mmd.predictability = 1. if form == "predictability" else 0.
        solver.cfg.mmd.condition = form if form in ("past", "neighbours") else "none"


def measure(solver, steps: int, warmup: int) -> tp.Dict[str, tp.Any]:
    """``steps`` timed steps of each form, in turn (after ``warmup`` steps of each); ``*_metrics``: the
    last step's metrics of each form."""
    batches = iter(solver.dataloaders["train"])
    innovations_loss, past_predictor = solver.innovations_loss, solver.past_predictor
    times: tp.Dict[str, tp.List[float]] = {form: [] for form in FORMS}
    metrics: tp.Dict[str, dict] = {form: {} for form in FORMS}

    def run() -> None:
        for index in range(warmup + steps):
            for form in FORMS:
                use_form(solver, form, innovations_loss, past_predictor)
                batch = next(batches)
                duration = timed(lambda: metrics[form].update(solver.run_step(index, batch, {})))
                if index >= warmup:
                    times[form].append(duration)
        use_form(solver, "past", innovations_loss, past_predictor)

    print(f"timing {warmup} warm-up + {steps} steps of each form: {', '.join(FORMS)} ...", flush=True)
    solver.run_stage("train", run)
    # Each round's ratio to the paper loss's step of the same round, then their median: the load
    # changes between rounds more than within one.
    ratios = {form: statistics.median(t / paper for t, paper in zip(times[form], times["paper"]))
              for form in FORMS if form != "paper"}
    return {**{f"{form}_step_s": statistics.median(times[form]) for form in FORMS},
            **{f"{form}_ratio": ratio for form, ratio in ratios.items()},
            **{f"{form}_steps_s": times[form] for form in FORMS},
            **{f"{form}_metrics": scalars(metrics[form]) for form in FORMS}}


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> tp.Dict[str, tp.Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per form")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per form first")
    add_run_arguments(parser, "mmd.predictor.hidden=64")
    args = parser.parse_args(argv)
    with benchmark_data(args.threads) as egs:
        solver = build_solver(egs, egs.parent / "dora", args.overrides)
        results = {"batch_size": int(solver.cfg.dataset.batch_size), "threads": torch.get_num_threads(),
                   "overrides": list(args.overrides), **measure(solver, args.steps, args.warmup)}
    print(f"paper loss step: {results['paper_step_s']:.3f} s (batch {results['batch_size']})")
    for form in FORMS[1:]:
        print(f"{form}: {results[f'{form}_step_s']:.3f} s ({results[f'{form}_ratio']:.3f}x the paper loss's step)")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
