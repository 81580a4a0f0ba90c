"""Time, peak memory, bias and spread of the independence-MMD estimators at the paper's scale.

Run ``python -m audiocraft_mmd.benchmarks.estimators`` (``--quick`` for a smoke run, ``--help`` for
the options). It compares, on rows of K = 4 codebooks x D = 128 features in float32:

* ``reference``: the paper's permutation estimator written the way the reference code computes it:
  a product-of-marginals sample from K row permutations, ONE [2N, 2N] squared-distance matrix
  from the matrix-product expansion ``‖u‖² + ‖v‖² - 2 u·v`` on the 512-dimensional rows, then per
  bandwidth the kernel sums under gradient checkpointing (so the backward pass recomputes the
  [2N, 2N] kernel instead of storing one per bandwidth);
* ``hsic``: the exact blocked estimator (:mod:`audiocraft_mmd.losses.hsic`);
* ``rff``: random Fourier features (:mod:`audiocraft_mmd.losses.rff`), 1024 features per bandwidth.

**Time and memory.** Each (estimator, N) case runs in a fresh Python process: one forward + backward
on N = 64 rows to load the libraries, then ``--repeats`` timed forward + backward passes on N rows
of standard normal data. Peak memory is the growth of the process's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over the timed passes, i.e. peak RSS minus the
RSS peak reached before them (torch's CPU allocations are invisible to tracemalloc). Times are
wall-clock; the reported time is the fastest pass (the machine may be shared; the median is given
too). Workers run with ``MALLOC_MMAP_THRESHOLD_=131072`` so that freed buffers go back to the system
at once and peak RSS follows the live tensors.

**Bias and spread.** Over ``--draws`` draws of FRESH independent data (K independent Gaussian
blocks, standardised per feature as the loss does), the mean, standard deviation and the mean in
units of its standard error; and the mean over ``--dependent-draws`` draws of dependent data
(codebook 1 a noisy non-linear function of codebook 0) for context. For ``rff``, the RMS error
against the exact estimate on the same rows as a function of the number of features.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import typing as tp

import torch
from torch.utils.checkpoint import checkpoint

from ..losses.hsic import hsic_mmd
from ..losses.mmd import DEFAULT_BANDWIDTHS, PAPER_BANDWIDTHS, standardize_features
from ..losses.mmd_estimators import get_estimator, permutation_indices, product_of_marginals
from ..losses.rff import rff_mmd

NUM_CODEBOOKS = 4
DIM = 128
PAPER_ROWS = 11_776  # 256 clips x 46 aligned frames: the paper's macro-batch
BANDWIDTH_SETS = {
    # The paper's absolute bandwidths (6 values): the paper-scale benchmark's setting.
    "paper": tuple(PAPER_BANDWIDTHS),
    # The loss's default: multiples of K·D (5 values), the smooth regime after standardisation.
    "dim": tuple(a * NUM_CODEBOOKS * DIM for a in DEFAULT_BANDWIDTHS),
    # Six dimension-scaled bandwidths, powers of 2 apart (all but one kernel by squaring).
    "dim6": tuple(a * NUM_CODEBOOKS * DIM for a in (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)),
}


# ---------------------------------------------------------------------------------------------------
# The reference-style permutation estimator
# ---------------------------------------------------------------------------------------------------

def _kernel_terms(dists: torch.Tensor, bandwidth: float, num_rows: int) -> torch.Tensor:
    """MMD² terms of one bandwidth from the [2N, 2N] distance matrix (joint rows first)."""
    kernel = torch.exp(-dists / (2 * bandwidth))
    n = num_rows
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return within - 2 * k_xy.mean()


def reference_permutation_mmd(samples: torch.Tensor, bandwidths: torch.Tensor,
                              generator: tp.Optional[torch.Generator] = None) -> torch.Tensor:
    """The paper's permutation estimator, computed as the reference code does (see the module docstring).

    Same value as the registered ``"permutation"`` estimator for the same permutations; normalised by
    the number of rows N (not by the number of clips, the reference code's defect).
    """
    n, num_codebooks, dim = samples.shape
    perms = permutation_indices(n, num_codebooks, generator, samples.device)
    joint = samples.reshape(n, num_codebooks * dim)
    marginals = product_of_marginals(samples, perms).reshape(n, num_codebooks * dim)
    both = torch.cat([joint, marginals])
    norms = both.pow(2).sum(1, keepdim=True)
    dists = norms + norms.t() - 2 * both @ both.t()
    total = samples.new_zeros(())
    for bandwidth in bandwidths.tolist():
        total = total + checkpoint(_kernel_terms, dists, bandwidth, n, use_reentrant=False)
    return total


ESTIMATOR_FNS: tp.Dict[str, tp.Callable[..., torch.Tensor]] = {
    "reference": reference_permutation_mmd,
    "hsic": hsic_mmd,
    "rff": rff_mmd,
}


# ---------------------------------------------------------------------------------------------------
# One timing case, in a fresh process
# ---------------------------------------------------------------------------------------------------

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB


def _forward_backward(estimator: str, samples: torch.Tensor, bandwidths: torch.Tensor,
                      generator: torch.Generator) -> float:
    samples.grad = None
    value = ESTIMATOR_FNS[estimator](samples, bandwidths, generator)
    value.backward()
    return value.item()


def run_case(estimator: str, rows: int, bandwidth_set: str, repeats: int, seed: int = 0) -> tp.Dict[str, tp.Any]:
    """Times ``repeats`` forward + backward passes of one estimator on N = ``rows`` rows (this process)."""
    generator = torch.Generator().manual_seed(seed)
    bandwidths = torch.tensor(BANDWIDTH_SETS[bandwidth_set])
    warm_up = torch.randn(64, NUM_CODEBOOKS, DIM, generator=generator, requires_grad=True)
    _forward_backward(estimator, warm_up, bandwidths, generator)
    samples = torch.randn(rows, NUM_CODEBOOKS, DIM, generator=generator, requires_grad=True)
    baseline = _peak_rss_mb()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        _forward_backward(estimator, samples, bandwidths, generator)
        times.append(time.perf_counter() - begin)
    return {"estimator": estimator, "rows": rows, "bandwidths": bandwidth_set, "times": times,
            "time": min(times), "median_time": statistics.median(times),
            "peak_mb": _peak_rss_mb() - baseline, "baseline_mb": baseline, "threads": torch.get_num_threads()}


def run_case_in_subprocess(estimator: str, rows: int, bandwidth_set: str, repeats: int,
                           timeout: float) -> tp.Dict[str, tp.Any]:
    """:func:`run_case` in a fresh interpreter, so that its peak RSS is its own."""
    spec = json.dumps({"estimator": estimator, "rows": rows, "bandwidth_set": bandwidth_set, "repeats": repeats,
                       "threads": torch.get_num_threads()})
    command = [sys.executable, "-m", "audiocraft_mmd.benchmarks.estimators", "--worker", spec]
    # A fixed mmap threshold makes glibc return every freed buffer above 128 kB to the system at once,
    # so that peak RSS follows the live tensors rather than the allocator's cache.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"estimator": estimator, "rows": rows, "bandwidths": bandwidth_set, "error": f"timeout {timeout:.0f} s"}
    if done.returncode != 0:
        reason = "killed (out of memory?)" if done.returncode < 0 else done.stderr.strip().splitlines()[-1:]
        return {"estimator": estimator, "rows": rows, "bandwidths": bandwidth_set,
                "error": f"exit {done.returncode}: {reason}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------
# Bias, spread and random-feature error
# ---------------------------------------------------------------------------------------------------

def independent_rows(generator: torch.Generator, rows: int) -> torch.Tensor:
    return standardize_features(torch.randn(rows, NUM_CODEBOOKS, DIM, generator=generator))


def dependent_rows(generator: torch.Generator, rows: int) -> torch.Tensor:
    """Codebook 1 = tanh(W · codebook 0) + 0.5 noise; codebooks 2 and 3 independent."""
    samples = torch.randn(rows, NUM_CODEBOOKS, DIM, generator=generator)
    weight = torch.randn(DIM, DIM, generator=generator) / math.sqrt(DIM)
    samples[:, 1] = torch.tanh(samples[:, 0] @ weight.t()) + 0.5 * samples[:, 1]
    return standardize_features(samples)


STAT_ESTIMATORS = {
    "reference": reference_permutation_mmd,
    "permutation_debiased": get_estimator("permutation_debiased"),
    "hsic": hsic_mmd,
    "rff": rff_mmd,
}


def bias_and_spread(rows: int, bandwidth_set: str, draws: int, dependent_draws: int, seed: int = 1,
                    log: tp.Callable[[str], None] = print) -> tp.List[tp.Dict[str, tp.Any]]:
    """Mean, std and mean / standard error over fresh independent draws; mean on dependent draws."""
    bandwidths = torch.tensor(BANDWIDTH_SETS[bandwidth_set])
    results = []
    with torch.no_grad():
        for name, fn in STAT_ESTIMATORS.items():
            generator = torch.Generator().manual_seed(seed)
            null = torch.tensor([fn(independent_rows(generator, rows), bandwidths, generator).item()
                                 for _ in range(draws)], dtype=torch.float64)
            dependent = torch.tensor([fn(dependent_rows(generator, rows), bandwidths, generator).item()
                                      for _ in range(dependent_draws)], dtype=torch.float64)
            mean, std = null.mean().item(), null.std().item()
            standard_error = std / math.sqrt(draws)
            results.append({"estimator": name, "rows": rows, "draws": draws, "mean": mean, "std": std,
                            "mean_in_se": mean / standard_error if standard_error > 0 else float("nan"),
                            "dependent_mean": dependent.mean().item()})
            log(f"  bias {name}: mean {mean:.3e} ({mean / standard_error:+.1f} SE), std {std:.2e}, "
                f"dependent {dependent.mean().item():.3e}")
    return results


def rff_error(rows: int, bandwidth_set: str, features: tp.Sequence[int], draws: int, seed: int = 2,
              log: tp.Callable[[str], None] = print) -> tp.List[tp.Dict[str, tp.Any]]:
    """RMS error of ``rff`` against the exact estimate on the same (dependent) rows, per feature count."""
    bandwidths = torch.tensor(BANDWIDTH_SETS[bandwidth_set])
    generator = torch.Generator().manual_seed(seed)
    results = []
    with torch.no_grad():
        samples = dependent_rows(generator, rows)
        exact = hsic_mmd(samples, bandwidths).item()
        for num_features in features:
            values = torch.tensor([rff_mmd(samples, bandwidths, generator, num_features=num_features).item()
                                   for _ in range(draws)], dtype=torch.float64)
            rms = (values - exact).pow(2).mean().sqrt().item()
            results.append({"features": num_features, "rows": rows, "exact": exact, "rms_error": rms,
                            "relative_rms_error": rms / abs(exact), "mean_error": values.mean().item() - exact})
            log(f"  rff {num_features} features: exact {exact:.3e}, RMS error {rms:.2e} ({rms / abs(exact):.1%})")
    return results


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------

def markdown_report(timings: tp.List[dict], bias: tp.List[dict], errors: tp.List[dict], args: argparse.Namespace
                    ) -> str:
    lines = [f"Timing: forward + backward, K = {NUM_CODEBOOKS}, D = {DIM}, float32, bandwidths "
             f"`{args.bandwidths}` {list(BANDWIDTH_SETS[args.bandwidths])}, {torch.get_num_threads()} threads, "
             f"fastest of {args.repeats} (median in brackets); peak = peak RSS growth in a fresh process.", "",
             "| N | estimator | time (s) | peak memory (MB) | time vs reference | memory vs reference |",
             "| --- | --- | --- | --- | --- | --- |"]
    reference = {t["rows"]: t for t in timings if t["estimator"] == "reference" and "error" not in t}
    for t in timings:
        if "error" in t:
            lines.append(f"| {t['rows']} | {t['estimator']} | {t['error']} | | | |")
            continue
        ref = reference.get(t["rows"])
        speed = f"{ref['time'] / t['time']:.1f}x faster" if ref else "n/a"
        memory = f"{t['peak_mb'] / ref['peak_mb']:.3f}" if ref and ref["peak_mb"] > 0 else "n/a"
        lines.append(f"| {t['rows']} | {t['estimator']} | {t['time']:.2f} ({t['median_time']:.2f}) | "
                     f"{t['peak_mb']:.0f} | {speed} | {memory} |")
    if bias:
        bandwidths = [round(a, 3) for a in BANDWIDTH_SETS[args.stats_bandwidths]]
        lines += ["", f"Bias and spread over {bias[0]['draws']} draws of fresh independent data, "
                  f"N = {bias[0]['rows']}, bandwidths `{args.stats_bandwidths}` {bandwidths}; "
                  f"dependent: mean over {args.dependent_draws} draws.", "",
                  "| estimator | mean (independent) | std | mean / standard error | mean (dependent) |",
                  "| --- | --- | --- | --- | --- |"]
        for b in bias:
            lines.append(f"| {b['estimator']} | {b['mean']:.3e} | {b['std']:.2e} | {b['mean_in_se']:+.1f} | "
                         f"{b['dependent_mean']:.3e} |")
    if errors:
        lines += ["", f"Random-feature error against the exact estimate on the same dependent rows "
                  f"(N = {errors[0]['rows']}, exact {errors[0]['exact']:.3e}), {args.rff_draws} draws of features.", "",
                  "| features per bandwidth | RMS error | relative | mean error |", "| --- | --- | --- | --- |"]
        for e in errors:
            lines.append(f"| {e['features']} | {e['rms_error']:.2e} | {e['relative_rms_error']:.1%} | "
                         f"{e['mean_error']:+.1e} |")
    return "\n".join(lines)


def parse_args(argv: tp.Optional[tp.Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m audiocraft_mmd.benchmarks.estimators",
        description="Time, peak memory, bias and spread of the independence-MMD estimators "
                    "(reference-style permutation, exact blocked hsic, random-feature rff).")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N in {256, 1024}, 1 repeat, 6 draws, small rff sweep")
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 4000, PAPER_ROWS],
                        help="values of N for time and memory (default: 1000 4000 11776)")
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATOR_FNS), choices=list(ESTIMATOR_FNS))
    parser.add_argument("--repeats", type=int, default=2, help="timed forward + backward passes per case")
    parser.add_argument("--bandwidths", default="paper", choices=sorted(BANDWIDTH_SETS),
                        help="bandwidths for time and memory (default: the paper's 6 absolute values)")
    parser.add_argument("--stats-bandwidths", default="dim", choices=sorted(BANDWIDTH_SETS),
                        help="bandwidths for bias and rff error (default: the loss's, multiples of K*D)")
    parser.add_argument("--stats-rows", type=int, default=1000, help="N for bias, spread and rff error")
    parser.add_argument("--draws", type=int, default=30, help="fresh independent draws per estimator")
    parser.add_argument("--dependent-draws", type=int, default=3)
    parser.add_argument("--rff-features", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--rff-draws", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per timing case")
    parser.add_argument("--skip-stats", action="store_true", help="time and memory only (no bias, no rff error)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in every process (default: torch's; 1 is steadier on a shared machine)")
    parser.add_argument("--json", help="also write every figure to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one timing case, JSON spec
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeats, args.draws, args.dependent_draws = [256, 1024], 1, 6, 1
        args.stats_rows, args.rff_features, args.rff_draws = 256, [64, 256], 4
    for name in ("repeats", "draws", "dependent_draws", "stats_rows", "rff_draws"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if any(n < 2 for n in args.rows):
        parser.error("--rows must all be >= 2")
    return args


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        torch.set_num_threads(spec["threads"])
        print(json.dumps(run_case(spec["estimator"], spec["rows"], spec["bandwidth_set"], spec["repeats"])))
        return

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    timings = []
    for rows in args.rows:
        for estimator in args.estimators:
            log(f"time/memory: {estimator}, N = {rows} ...")
            result = run_case_in_subprocess(estimator, rows, args.bandwidths, args.repeats, args.timeout)
            timings.append(result)
            log(f"  {result.get('error') or 'time %.2f s, peak %.0f MB' % (result['time'], result['peak_mb'])}")
    bias, errors = [], []
    if not args.skip_stats:
        log(f"bias and spread, N = {args.stats_rows}, {args.draws} draws ...")
        bias = bias_and_spread(args.stats_rows, args.stats_bandwidths, args.draws, args.dependent_draws, log=log)
        log("rff error vs features ...")
        errors = rff_error(args.stats_rows, args.stats_bandwidths, args.rff_features, args.rff_draws, log=log)
    print(markdown_report(timings, bias, errors, args))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"args": vars(args), "timings": timings, "bias": bias, "rff_error": errors}, file, indent=1)


if __name__ == "__main__":
    main()
