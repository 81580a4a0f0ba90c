"""Every check that needs a GPU, and the GPU timings, in one run written to one JSON.

    ./mmd-env scripts/gpu_check [--out gpu_check.json]     # or: python scripts/gpu_check.py

1. **Tests**: ``tests/test_gpu.py`` (marker ``gpu``): the estimators under bf16 and fp16 autocast
   against float32, a few steps of ``solver=compression/encodec_mmd_32khz`` on CUDA (per-step loss,
   macro-batch, row bank), an LM step and a short generation per codebook pattern with xformers'
   attention, and the 2-rank global loss over NCCL (only where 2 GPUs are visible). Each test's
   outcome, duration and, when skipped or failed, the reason.
2. **Timings** (CUDA only, on the first GPU, in this run):
   - the default estimator against the reference-style permutation estimator
     (:func:`audiocraft_mmd.benchmarks.estimators.reference_permutation_mmd`) at N = 11,776 rows
     (K = 4, D = 128, the paper's bandwidths), forward + backward: fastest and median of
     ``--repeats`` passes, and the peak CUDA memory above what was allocated before;
   - a training step of the paper's recipe (:mod:`audiocraft_mmd.benchmarks.training_step`) with
     λ = 0 (AudioCraft's step), with the per-step loss, the macro-batch schedule (M = 32) and the row
     bank (``mmd.bank=32``), ``--batch-size`` clips per step (the paper's per-GPU batch: 64 over 8).

Without CUDA every test is skipped with the reason, no timing is measured, and the JSON says so
(``cuda.available``: false). Exit code 1 if a test failed or errored, else 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
import platform
import sys
import tempfile
import time
import typing as tp

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests" / "test_gpu.py"


class OutcomeCollector:
    """A pytest plugin keeping each test's outcome, duration and reason."""

    def __init__(self):
        self.tests: tp.Dict[str, tp.Dict[str, tp.Any]] = {}

    def pytest_runtest_logreport(self, report) -> None:
        entry = self.tests.setdefault(report.nodeid, {"test": report.nodeid, "outcome": "passed", "seconds": 0.})
        entry["seconds"] += report.duration
        if report.outcome == "skipped" and report.when in ("setup", "call"):
            entry["outcome"] = "skipped"
            entry["reason"] = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        elif report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["reason"] = str(report.longrepr)[-3000:]

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.tests[report.nodeid or "collection"] = {"test": report.nodeid or "collection", "outcome": "error",
                                                         "seconds": 0., "reason": str(report.longrepr)[-3000:]}


def run_tests(pytest_args: tp.Sequence[str] = ()) -> tp.Tuple[int, tp.List[dict]]:
    """Runs tests/test_gpu.py in this process; returns pytest's exit code and the tests' outcomes."""
    import pytest

    if not TESTS.exists():
        return 4, [{"test": str(TESTS), "outcome": "error", "seconds": 0., "reason": "not found (run from a checkout)"}]
    collector = OutcomeCollector()
    code = pytest.main([str(TESTS), "-m", "gpu", "-q", "-p", "no:cacheprovider", f"--rootdir={REPO}", *pytest_args],
                       plugins=[collector])
    return int(code), list(collector.tests.values())


def estimator_timings(rows: int, repeats: int, bandwidth_set: str = "paper") -> tp.Dict[str, tp.Any]:
    """Forward + backward of the default and the reference-style estimators on N = ``rows`` CUDA rows."""
    import torch

    from audiocraft_mmd.benchmarks.estimators import BANDWIDTH_SETS, DIM, NUM_CODEBOOKS, _forward_backward
    from audiocraft_mmd.losses.mmd import DEFAULT_ESTIMATOR
    from audiocraft_mmd.utils.step_benchmark import timed

    results: tp.Dict[str, tp.Any] = {"rows": rows, "codebooks": NUM_CODEBOOKS, "dim": DIM,
                                     "bandwidths": bandwidth_set, "repeats": repeats}
    for name in (DEFAULT_ESTIMATOR, "reference"):
        generator = torch.Generator().manual_seed(0)
        bandwidths = torch.tensor(BANDWIDTH_SETS[bandwidth_set], device="cuda")
        warm_up = torch.randn(64, NUM_CODEBOOKS, DIM, generator=generator).cuda().requires_grad_(True)
        _forward_backward(name, warm_up, bandwidths, generator)
        samples = torch.randn(rows, NUM_CODEBOOKS, DIM, generator=generator).cuda().requires_grad_(True)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        times = [timed(lambda rows=samples: _forward_backward(name, rows, bandwidths, generator))
                 for _ in range(repeats)]
        results[name] = {"estimator": name, "time_s": min(times), "median_time_s": sorted(times)[len(times) // 2],
                         "times_s": times, "peak_mb": (torch.cuda.max_memory_allocated() - before) / 2 ** 20}
        del samples, warm_up
        torch.cuda.empty_cache()
    results["default"] = DEFAULT_ESTIMATOR
    results["reference_over_default"] = results["reference"]["time_s"] / results[DEFAULT_ESTIMATOR]["time_s"]
    return results


def training_step_timings(batch_size: int, macro_batch: int, baseline_steps: int, warmup: int) -> tp.Dict[str, tp.Any]:
    """The paper recipe's steps on CUDA (:func:`audiocraft_mmd.benchmarks.training_step.measure`)."""
    from audiocraft_mmd.benchmarks import training_step
    from audiocraft_mmd.utils.step_benchmark import write_audio

    with tempfile.TemporaryDirectory() as tmp:
        egs = write_audio(Path(tmp))
        solver = training_step.build_solver(egs, Path(tmp) / "dora", batch_size, macro_batch, ["device=cuda"],
                                            ema_device="cuda")
        results = training_step.measure(solver, macro_batch, baseline_steps, warmup, per_step_steps=baseline_steps)
    return {"batch_size": batch_size, "macro_batch": macro_batch, **results}


def cuda_state() -> tp.Dict[str, tp.Any]:
    import torch

    available = torch.cuda.is_available()
    state: tp.Dict[str, tp.Any] = {"available": available, "torch": torch.__version__, "cuda": torch.version.cuda}
    if available:
        state["devices"] = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    else:
        state["reason"] = "CUDA is absent (torch.cuda.is_available() is False)"
    return state


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/gpu_check", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="the JSON report")
    parser.add_argument("--rows", type=int, default=11_776, help="N for the estimator timings (the paper's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed estimator passes")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per training step (paper: 64 over 8 GPUs)")
    parser.add_argument("--macro-batch", type=int, default=32, help="M of the macro-batch and the row bank (paper: 32)")
    parser.add_argument("--baseline-steps", type=int, default=8, help="timed λ = 0 (and per-step loss) steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--skip-timings", action="store_true", help="run the tests only")
    args = parser.parse_args(argv)
    if args.rows < 2 or args.repeats < 1 or args.batch_size < 1 or args.macro_batch < 2 or args.baseline_steps < 1:
        parser.error("--rows must be >= 2, --macro-batch >= 2, --repeats, --batch-size and --baseline-steps >= 1")
    args.out.parent.mkdir(parents=True, exist_ok=True)

    start = time.time()
    report: tp.Dict[str, tp.Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "cuda": cuda_state()}
    print(f"CUDA: {report['cuda']}", flush=True)
    code, tests = run_tests()
    report.update(pytest_exit_code=code, tests=tests,
                  outcomes={outcome: sum(test["outcome"] == outcome for test in tests)
                            for outcome in ("passed", "failed", "error", "skipped")})
    report["tests_seconds"] = time.time() - start
    if not report["cuda"]["available"]:
        report["timings"] = {"skipped": report["cuda"]["reason"]}
    elif args.skip_timings:
        report["timings"] = {"skipped": "--skip-timings"}
    else:
        report["timings"] = {}
        print(f"timing the estimators at N = {args.rows} ...", flush=True)
        report["timings"]["estimators"] = estimator_timings(args.rows, args.repeats)
        report["timings"]["training_step"] = training_step_timings(args.batch_size, args.macro_batch,
                                                                   args.baseline_steps, args.warmup)
    report["seconds"] = time.time() - start
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"{report['outcomes']} in {report['seconds']:.0f} s; report: {args.out}", flush=True)
    return 1 if report["outcomes"]["failed"] or report["outcomes"]["error"] or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
