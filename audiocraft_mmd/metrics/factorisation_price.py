"""The price of the parallel factorisation, from the cross-entropies of a parallel and a depth LM.

A parallel LM predicts the K codes of a frame independently given the past; a depth LM of the same
temporal size predicts them jointly. On codebook 1 both see exactly the same information (the past),
so their difference there is training, not factorisation: it is the control. On codebooks 2..K the
depth LM also sees the lower codes of the same frame, so the 2..K gap less the control estimates
what the parallel factorisation costs on these tokens (TC of a frame's codes given the past, as far
as these LMs can tell).

Every CE is in nats per code, as MusicGen's solver reports ``ce_q1`` … ``ce_qK``. A frame holds
K codes, so "per frame" is the sum over codebooks and "per second" is that times the frame rate.
"""

from __future__ import annotations

import dataclasses
import typing as tp

if tp.TYPE_CHECKING:
    from .lm_measures import Cell


class FactorisationPriceError(ValueError):
    """The cross-entropies given cannot be compared (no seed, mismatched codebooks)."""


@dataclasses.dataclass
class Spread:
    """A figure over LM seeds: its mean and its range (max - min; 0 with a single seed)."""
    mean: float
    spread: float

    @classmethod
    def of(cls, values: tp.Sequence[float]) -> "Spread":
        return cls(mean=sum(values) / len(values), spread=max(values) - min(values))


@dataclasses.dataclass
class FactorisationPrice:
    """Parallel against depth LM on one codec's tokens (see the module docstring)."""
    num_seeds: int
    frame_rate: tp.Optional[float]
    parallel_ce: tp.List[Spread]          # per codebook, nats per code
    depth_ce: tp.List[Spread]
    gap: tp.List[Spread]                  # parallel - depth, per codebook, nats per code
    parallel_per_frame: Spread            # sum over codebooks, nats per frame
    depth_per_frame: Spread
    control: Spread                       # gap on codebook 1
    gap_rest: Spread                      # mean gap on codebooks 2..K, nats per code
    gap_rest_less_control: Spread         # gap_rest - control, nats per code
    price_per_frame: Spread               # sum over 2..K of (gap - control), nats per frame

    @property
    def parallel_per_second(self) -> tp.Optional[Spread]:
        return _per_second(self.parallel_per_frame, self.frame_rate)

    @property
    def depth_per_second(self) -> tp.Optional[Spread]:
        return _per_second(self.depth_per_frame, self.frame_rate)

    @property
    def price_per_second(self) -> tp.Optional[Spread]:
        return _per_second(self.price_per_frame, self.frame_rate)

    def as_dict(self) -> tp.Dict[str, tp.Any]:
        """Every figure, the per-second ones included (None without a frame rate), for JSON."""
        per_second = {name: None if value is None else dataclasses.asdict(value)
                      for name, value in [("parallel_per_second", self.parallel_per_second),
                                          ("depth_per_second", self.depth_per_second),
                                          ("price_per_second", self.price_per_second)]}
        return {**dataclasses.asdict(self), **per_second, "beyond_spread": self.beyond_spread}

    @property
    def beyond_spread(self) -> bool:
        """Whether the 2..K gap less the control exceeds its own LM-seed range (never with one seed)."""
        return self.num_seeds > 1 and abs(self.gap_rest_less_control.mean) > self.gap_rest_less_control.spread


def _per_second(per_frame: Spread, frame_rate: tp.Optional[float]) -> tp.Optional[Spread]:
    if frame_rate is None:
        return None
    return Spread(per_frame.mean * frame_rate, per_frame.spread * frame_rate)


def factorisation_price(parallel: tp.Sequence[tp.Sequence[float]], depth: tp.Sequence[tp.Sequence[float]],
                        frame_rate: tp.Optional[float] = None) -> FactorisationPrice:
    """The price of the parallel factorisation from per-codebook cross-entropies.

    Args:
        parallel: One list per LM seed of the parallel LM's CE per codebook (nats per code).
        depth: The depth LM's, one list per LM seed, paired with ``parallel`` seed by seed.
        frame_rate: Frames per second of the codec, for the per-second figures (None: not reported).
    Raises:
        FactorisationPriceError: No seed, unpaired seeds, fewer than 2 codebooks or mismatched lengths.
    """
    if not parallel or len(parallel) != len(depth):
        raise FactorisationPriceError(
            f"need the same number (>= 1) of parallel and depth LM seeds, got {len(parallel)} and {len(depth)}")
    num_q = len(parallel[0])
    if num_q < 2 or any(len(ce) != num_q for ce in [*parallel, *depth]):
        raise FactorisationPriceError(
            f"need the same number (>= 2) of codebooks in every LM, got {[len(ce) for ce in [*parallel, *depth]]}")
    gaps = [[p - d for p, d in zip(par, dep)] for par, dep in zip(parallel, depth)]
    rest = [sum(gap[1:]) / (num_q - 1) for gap in gaps]
    return FactorisationPrice(
        num_seeds=len(parallel), frame_rate=frame_rate,
        parallel_ce=[Spread.of([ce[k] for ce in parallel]) for k in range(num_q)],
        depth_ce=[Spread.of([ce[k] for ce in depth]) for k in range(num_q)],
        gap=[Spread.of([gap[k] for gap in gaps]) for k in range(num_q)],
        parallel_per_frame=Spread.of([sum(ce) for ce in parallel]),
        depth_per_frame=Spread.of([sum(ce) for ce in depth]),
        control=Spread.of([gap[0] for gap in gaps]),
        gap_rest=Spread.of(rest),
        gap_rest_less_control=Spread.of([r - gap[0] for r, gap in zip(rest, gaps)]),
        price_per_frame=Spread.of([sum(g - gap[0] for g in gap[1:]) for gap in gaps]))


def prices_by_codec(cells: tp.Sequence["Cell"]) -> tp.Dict[str, FactorisationPrice]:
    """The price for every codec that has both a ``parallel`` and a ``depth`` cell, paired by LM seed."""
    prices = {}
    for codec in dict.fromkeys(c.codec for c in cells):
        by_seed: tp.Dict[str, tp.Dict[tp.Optional[int], "Cell"]] = {"parallel": {}, "depth": {}}
        for cell in cells:
            if cell.codec == codec and cell.pattern in by_seed:
                by_seed[cell.pattern][cell.lm_seed] = cell
        seeds = [seed for seed in by_seed["parallel"] if seed in by_seed["depth"]]
        if seeds:
            prices[codec] = factorisation_price(
                [by_seed["parallel"][seed].valid_ce_per_codebook for seed in seeds],
                [by_seed["depth"][seed].valid_ce_per_codebook for seed in seeds],
                frame_rate=by_seed["parallel"][seeds[0]].frame_rate)
    return prices


def price_markdown(codec: str, price: FactorisationPrice) -> str:
    """The price as a markdown section (figures as mean ± half the LM-seed range where several seeds)."""
    def text(value: tp.Optional[Spread]) -> str:
        if value is None:
            return "-"
        return f"{value.mean:.3f}" + (f" ± {value.spread / 2:.3f}" if price.num_seeds > 1 else "")
    num_q = len(price.gap)
    lines = [f"### Price of the parallel factorisation on {codec} ({price.num_seeds} LM seed(s))", "",
             "| codebook | parallel CE | depth CE | parallel − depth |", "| --- | --- | --- | --- |"]
    for k in range(num_q):
        name = f"q{k + 1}" + (" (control)" if k == 0 else "")
        lines.append(f"| {name} | {text(price.parallel_ce[k])} | {text(price.depth_ce[k])} | {text(price.gap[k])} |")
    lines += ["", "| figure | value |", "| --- | --- |",
              f"| parallel CE, nats per frame | {text(price.parallel_per_frame)} |",
              f"| parallel CE, nats per second | {text(price.parallel_per_second)} |",
              f"| depth CE, nats per frame | {text(price.depth_per_frame)} |",
              f"| depth CE, nats per second | {text(price.depth_per_second)} |",
              f"| control (gap on q1), nats per code | {text(price.control)} |",
              f"| gap on q2..q{num_q}, nats per code | {text(price.gap_rest)} |",
              f"| gap on q2..q{num_q} less the control, nats per code | {text(price.gap_rest_less_control)} |",
              f"| price, nats per frame (sum over q2..q{num_q} of gap − control) | {text(price.price_per_frame)} |",
              f"| price, nats per second | {text(price.price_per_second)} |"]
    if price.num_seeds == 1:
        lines += ["", "One LM seed: no spread; run with `--lm-seeds 2` or more before reading the price."]
    else:
        verdict = "beyond" if price.beyond_spread else "within"
        lines += ["", f"The 2..K gap less the control is {verdict} its LM-seed range "
                      f"({price.gap_rest_less_control.spread:.3f} nats per code)."]
    return "\n".join(lines) + "\n"
