"""Generation wall-clock of the depth LM against the parallel (and unroll, delay) LM, in one run.

Run ``python -m audiocraft_mmd.benchmarks.depth_lm`` (``--help`` for the options). It builds, with the
study's LM config (``model/lm/small.yaml``: the temporal transformer, and its ``codebooks_pattern.depth``
block for the depth transformer), one untrained LM per pattern for K = 4 codebooks of 256 entries
(the study codec's), and times ``LMModel.generate`` (MusicGen's sampling: top-k 250, temperature 1,
streaming KV cache) of ``--samples`` x ``--duration`` s at ``--frame-rate`` Hz (the study's 100 Hz),
unconditional, with the same seed and thread count for every pattern. Patterns are timed in turns,
``--repeats`` times, and the median is kept; each is reported as a ratio to the parallel LM's median
in the same run. Weights do not change the cost of a step, so untrained LMs time the same as trained
ones. Codec decoding is left out: it is the same for every pattern.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
import statistics
import time
import typing as tp

import omegaconf
import torch

from ..utils.paths import CONFIG_DIR

PATTERNS = ("parallel", "depth", "delay", "unroll")


@dataclasses.dataclass
class PatternTiming:
    """Median generation wall-clock of one pattern, and its ratio to the parallel LM's."""
    pattern: str
    seconds: float
    ratio_to_parallel: float
    parameters: int
    temporal_steps: int
    depth_steps: int


def lm_config(pattern: str, n_q: int, card: int, depth: tp.Optional[tp.Dict[str, tp.Any]] = None
              ) -> omegaconf.DictConfig:
    """The study's LM config (``model/lm/small.yaml``) for ``pattern``, unconditional, on CPU; ``depth``
    overrides keys of its ``codebooks_pattern.depth`` block."""
    small = omegaconf.OmegaConf.load(CONFIG_DIR / "model" / "lm" / "small.yaml")
    cfg = omegaconf.OmegaConf.merge(small, {
        "device": "cpu", "dtype": "float32", "dataset": {"segment_duration": 2.}, "conditioners": None,
        "fuser": {"sum": [], "prepend": [], "cross": [], "input_interpolate": []},
        "classifier_free_guidance": {"training_dropout": 0., "inference_coef": 1.},
        "attribute_dropout": {}, "codebooks_pattern": {"modeling": pattern, "depth": dict(depth or {})},
        "transformer_lm": {"n_q": n_q, "card": card}})
    assert isinstance(cfg, omegaconf.DictConfig)
    return cfg


@torch.no_grad()
def time_generation(lm, samples: int, frames: int, seed: int) -> float:
    from audiocraft.modules.conditioners import ConditioningAttributes
    torch.manual_seed(seed)
    attributes = [ConditioningAttributes(text={"description": None}) for _ in range(samples)]
    start = time.perf_counter()
    lm.generate(None, attributes, max_gen_len=frames, use_sampling=True, top_k=250)
    return time.perf_counter() - start


def run(patterns: tp.Sequence[str] = PATTERNS, n_q: int = 4, card: int = 256, samples: int = 2,
        duration: float = 2., frame_rate: float = 100., repeats: int = 5, seed: int = 0,
        depth: tp.Optional[tp.Dict[str, tp.Any]] = None) -> tp.List[PatternTiming]:
    """Times each pattern's generation (see module docstring); ``patterns`` must include ``parallel``."""
    from audiocraft.models import builders
    from audiocraft.modules.transformer import set_efficient_attention_backend
    from ..patterns import depth_steps, sequence_steps
    if "parallel" not in patterns:
        raise ValueError("--patterns must include parallel (the baseline of the ratios)")
    set_efficient_attention_backend("torch")
    frames = int(round(duration * frame_rate))
    torch.manual_seed(seed)
    lms = {pattern: builders.get_lm_model(lm_config(pattern, n_q, card, depth)).eval() for pattern in patterns}
    for lm in lms.values():  # warm-up: first calls allocate
        time_generation(lm, samples, min(frames, 8), seed)
    times: tp.Dict[str, tp.List[float]] = {pattern: [] for pattern in patterns}
    for _ in range(repeats):  # in turns, so that a busy moment of the machine hits every pattern
        for pattern, lm in lms.items():
            times[pattern].append(time_generation(lm, samples, frames, seed))
    medians = {pattern: statistics.median(values) for pattern, values in times.items()}
    return [PatternTiming(pattern=pattern, seconds=medians[pattern],
                          ratio_to_parallel=medians[pattern] / medians["parallel"],
                          parameters=sum(p.numel() for p in lm.parameters()),
                          temporal_steps=sequence_steps(lm.pattern_provider, frames),
                          depth_steps=depth_steps(lm.pattern_provider, frames))
            for pattern, lm in lms.items()]


def markdown(timings: tp.List[PatternTiming], args: argparse.Namespace) -> str:
    lines = [f"Generation of {args.samples} x {args.duration} s at {args.frame_rate:g} Hz, K = {args.n_q}, "
             f"card {args.card}, {args.threads} thread(s), median of {args.repeats}"
             + "".join(f", depth {item}" for item in args.depth) + ":", "",
             "| pattern | parameters | temporal steps | depth steps | seconds | ratio to parallel |",
             "| --- | --- | --- | --- | --- | --- |"]
    for t in timings:
        lines.append(f"| {t.pattern} | {t.parameters:,} | {t.temporal_steps} | {t.depth_steps} | "
                     f"{t.seconds:.3f} | {t.ratio_to_parallel:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: tp.Optional[tp.List[str]] = None) -> tp.List[PatternTiming]:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.benchmarks.depth_lm",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--patterns", default=",".join(PATTERNS))
    parser.add_argument("--n-q", type=int, default=4)
    parser.add_argument("--card", type=int, default=256)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--duration", type=float, default=2.)
    parser.add_argument("--frame-rate", type=float, default=100.)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--depth", action="append", default=[], metavar="KEY=VALUE",
                        help="a key of the depth LM's codebooks_pattern.depth block (repeatable), e.g. "
                        "--depth context=every --depth dim=128")
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args(argv)
    depth = {}
    for item in args.depth:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--depth takes KEY=VALUE, got {item!r}")
        depth[key] = int(value) if value.isdigit() else value
    torch.set_num_threads(args.threads)
    timings = run([p.strip() for p in args.patterns.split(",") if p.strip()], n_q=args.n_q, card=args.card,
                  samples=args.samples, duration=args.duration, frame_rate=args.frame_rate, repeats=args.repeats,
                  depth=depth)
    print(markdown(timings, args))
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(t) for t in timings], indent=2))
    return timings


if __name__ == "__main__":
    main()
