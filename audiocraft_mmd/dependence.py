"""``python -m audiocraft_mmd.dependence``: how dependent are a codec's codebooks on some audio?

Loads a codec (a ``//sig/SIG`` of this project's Dora runs, a solver checkpoint path or XP folder,
a model exported with ``audiocraft.utils.export``, or the standalone ``encodec`` package's model as
``encodec:24khz[:random|:<dir>|:<state dict>]``), encodes the audio of an AudioCraft manifest
in fixed-length segments, and measures on the codes: per-codebook entropy and usage, bias-corrected
pairwise mutual information under the parallel and delay alignments (with jackknife intervals),
total correlation where estimable, the training criterion's permutation test on the continuous
streams (:mod:`audiocraft_mmd.metrics`), and with ``--lags`` how the MI between codebooks decays
with the time between them (:mod:`audiocraft_mmd.metrics.lagged`), and the split of each alignment's MI
into its slow part (codes of a segment at least ``--slow-gap`` seconds apart) and its fast part, what a
parallel/delay LM pays for (:mod:`audiocraft_mmd.metrics.fast_slow`). Writes ``report.json`` and
``dependence.png`` to ``--out``, never over an existing report unless ``--overwrite``.

Audio at another sample rate or channel count than the codec's is converted to the codec's (a note
names the file's format once per format): this is what AudioCraft's loaders do when the codec is
trained (the study's 8 kHz codecs train on the 16 kHz data), so the codes measured are the ones the
codec produces in training; refusing would force a second copy of the data per codec rate.

Example::

    python -m audiocraft_mmd.dependence --checkpoint //sig/SIG --data egs/debian_music_16k_mono/evaluate \\
        --compare //sig/BASELINE --out dependence/SIG
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path
import sys
import typing as tp

import torch

from .errors import ConfigError
from .data.sources import read_audio_meta
from .utils.checkpoints import load_compression_model
from .utils.progress import Progress, say
from .losses.mmd import DEFAULT_BANDWIDTHS, DEFAULT_ESTIMATOR
from .quantization import StreamAdapter, adapter_for, capture_streams
from .metrics import (DependenceReport, FastSlowDependence, LagDependence, aligned_rows, dependence_report,
                      fast_slow_mutual_information, kernel_independence_test, lagged_mutual_information,
                      standard_alignments)

REPORT_NAME = "report.json"
FIGURE_NAME = "dependence.png"


class DependenceError(ConfigError):
    """A bad argument or input of the command; the message says what to change."""


def progress(message: str) -> None:
    say("dependence", message)


@dataclass
class Codec:
    """A loaded codec and the training criterion's options to test it with.

    Attributes:
        reference: What the user passed.
        model: AudioCraft ``CompressionModel`` (or ``encodec`` package model) in eval mode.
        kernel_options: Estimator, bandwidths, scale and standardisation of the loss (from the
            checkpoint's ``mmd`` config when it has one, else the loss's defaults).
    """
    reference: str
    model: tp.Any
    kernel_options: tp.Dict[str, tp.Any]

    @property
    def adapter(self) -> StreamAdapter:
        """How to read the model's streams and codes, and its rates (:mod:`.quantization.adapters`)."""
        return adapter_for(self.model)


def _kernel_options(cfg: tp.Any) -> tp.Dict[str, tp.Any]:
    options = {"estimator": DEFAULT_ESTIMATOR, "bandwidths": list(DEFAULT_BANDWIDTHS), "bandwidth_scale": "dim",
               "standardize": "feature"}
    mmd = cfg.get("mmd") if cfg is not None and hasattr(cfg, "get") else None
    if mmd is not None and mmd.estimator != "soft_mi":  # soft_mi is no kernel: the test uses the defaults
        options.update(estimator=str(mmd.estimator), bandwidths=[float(a) for a in mmd.bandwidths],
                       bandwidth_scale=str(mmd.bandwidth_scale), standardize=str(mmd.standardize))
    return options


def load_codec(reference: str, device: str = "cpu", bandwidth: tp.Optional[float] = None) -> Codec:
    """Loads a codec (:func:`~audiocraft_mmd.utils.checkpoints.load_compression_model`) with the kernel
    options of the loss it was trained with.

    Raises:
        CheckpointError: If nothing loadable is found, naming what was tried.
    """
    model, cfg = load_compression_model(reference, device, bandwidth)
    return Codec(reference, model, _kernel_options(cfg))


@dataclass
class Encoded:
    """Codes and kernel-test rows of one codec on the manifest's audio.

    Attributes:
        codes: ``[S, K, T]`` codes of S segments of T frames, in manifest order.
        rows: Alignment name -> ``[N, K, D]`` aligned stream rows, a random subset for the kernel test.
        tracks: Tracks used.
    """
    codes: torch.Tensor
    rows: tp.Dict[str, torch.Tensor]
    tracks: int


def encode_manifest(adapter: StreamAdapter, entries: tp.Sequence[tp.Any], segment: float, max_frames: int,
                    batch_size: int, device: str, rows_per_segment: int = 16, seed: int = 0) -> Encoded:
    """Encodes whole ``segment``-second pieces of each track (tails and shorter tracks are skipped)
    until ``max_frames`` frames, capturing codes and streams in the model's own quantizer pass."""
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio

    sample_rate, channels, model = adapter.sample_rate, adapter.channels, adapter.model
    samples = int(round(segment * sample_rate))
    codes: tp.List[torch.Tensor] = []
    alignments = standard_alignments(adapter.num_codebooks)
    rows: tp.Dict[str, tp.List[torch.Tensor]] = {name: [] for name in alignments}
    generator = torch.Generator().manual_seed(seed)
    frames, tracks = 0, 0

    def encode(batch: tp.List[torch.Tensor]) -> None:
        audio = torch.stack(batch).to(device)
        with torch.no_grad(), capture_streams(model) as captured:
            # The encoder and quantizer only: the decoder is not needed and costs as much again.
            adapter.quantize(audio)
        batch_codes, streams = captured.codes.cpu(), captured.streams.float().cpu()
        if streams.shape[0] != batch_codes.shape[0] or streams.shape[1] != batch_codes.shape[1] \
                or streams.shape[-1] != batch_codes.shape[-1]:
            raise DependenceError(f"captured streams {tuple(streams.shape)} and codes {tuple(batch_codes.shape)} "
                                  "do not match [B, K, D, T] / [B, K, T]")
        codes.append(batch_codes)
        for name, delays in alignments.items():
            segment_rows = aligned_rows(streams, delays)
            keep = torch.randperm(segment_rows.shape[0], generator=generator)[:rows_per_segment * len(batch)]
            rows[name].append(segment_rows[keep])

    pending: tp.List[torch.Tensor] = []
    counter = Progress(len(entries), "dependence")
    noted: tp.Set[tp.Tuple[int, int]] = set()
    for entry in entries:
        if frames >= max_frames:
            break
        wav, rate = audio_read(entry.path)
        if (rate, wav.shape[0]) != (sample_rate, channels) and (rate, wav.shape[0]) not in noted:
            noted.add((rate, wav.shape[0]))
            progress(f"note: {entry.path} is {rate} Hz, {wav.shape[0]} channel(s): converted to the codec's "
                     f"{sample_rate} Hz, {channels} channel(s) (as in the codec's training)")
        wav = convert_audio(wav, rate, sample_rate, channels)
        pieces = wav.shape[-1] // samples
        if pieces == 0:
            continue
        tracks += 1
        for piece in range(pieces):
            pending.append(wav[:, piece * samples:(piece + 1) * samples])
            if len(pending) == batch_size:
                encode(pending)
                pending = []
                frames = sum(c.shape[0] * c.shape[-1] for c in codes)
                if frames >= max_frames:
                    break
        counter.step(f"tracks: {frames} frames encoded")
    counter.close()
    if pending and frames < max_frames:
        encode(pending)
    if not codes:
        raise DependenceError(f"no track of the manifest lasts {segment} s or more; lower --segment")
    return Encoded(codes=torch.cat(codes), rows={name: torch.cat(value) for name, value in rows.items()},
                   tracks=tracks)


def measure(codec: Codec, encoded: Encoded, ci_blocks: int, shifts: int, permutations: int,
            kernel_rows: int, delays: tp.Optional[tp.Sequence[int]] = None) -> DependenceReport:
    """Runs every metric of :mod:`audiocraft_mmd.metrics` on one codec's encoded audio."""
    num_codebooks = encoded.codes.shape[1]
    alignments = standard_alignments(num_codebooks)
    if delays is not None:
        if len(delays) != num_codebooks:
            raise DependenceError(f"--delays has {len(delays)} values but the codec has K = {num_codebooks} "
                                  "codebooks")
        alignments["custom"] = list(delays)
    blocks = min(ci_blocks, encoded.codes.shape[0]) if ci_blocks else 0
    try:
        report = dependence_report(encoded.codes, codec.adapter.bins, alignments, shifts=shifts,
                                   ci_blocks=blocks if blocks >= 2 else 0)
    except ValueError as error:
        raise DependenceError(f"{codec.reference}: {error}") from error
    for name in ("parallel", "delay"):
        progress(f"{codec.reference}: kernel permutation test, {name} alignment")
        report.kernel_tests[name] = kernel_independence_test(
            encoded.rows[name], alignment=name, permutations=permutations, max_rows=kernel_rows,
            **codec.kernel_options)
    return report


def summary(label: str, report: DependenceReport) -> str:
    lines = [f"{label}: entropy (bits) " + ", ".join(f"{h:.2f}" for h in report.usage.entropy)
             + f" of {math.log2(report.usage.bins):.0f}; usage " + ", ".join(f"{u:.2f}" for u in report.usage.usage)]
    for name, alignment in report.alignments.items():
        lines.append(f"  {name:8s} mean MI {alignment.mean('mi'):.4f} bits "
                     f"(normalised {alignment.mean('normalized'):.4f}, "
                     f"regimes {sorted({p.regime for p in alignment.pairs})})")
    for name, test in report.kernel_tests.items():
        lines.append(f"  kernel {name}: MMD² {test.statistic:.3g}, p = {test.p_value:.3f} ({test.estimator})")
    return "\n".join(lines)


def fast_slow_summary(splits: tp.Mapping[str, FastSlowDependence]) -> str:
    return "\n".join(f"  {name:8s} fast MI {split.fast:.4f} + slow {split.slow:.4f} bits (slow: >= {split.gap} steps "
                     f"apart)" for name, split in splits.items())


# Without --slow-gap, slow pairs are at least this fraction of a segment apart (as in the evaluate stage).
SLOW_GAP_FRACTION = 0.25


def measure_fast_slow(codec: Codec, encoded: Encoded, report: DependenceReport, gap_seconds: tp.Optional[float],
                      ci_blocks: int, shifts: int) -> tp.Dict[str, FastSlowDependence]:
    """The fast/slow split of every alignment of ``report``: slow pairs ``gap_seconds`` apart or more (None:
    a quarter of the aligned segment); an alignment whose segments are too short for a gap is left out."""
    blocks = min(ci_blocks, encoded.codes.shape[0])
    splits = {}
    for name, alignment in report.alignments.items():
        steps = encoded.codes.shape[-1] - max(alignment.delays)
        gap = round(gap_seconds * codec.adapter.frame_rate) if gap_seconds else int(SLOW_GAP_FRACTION * steps)
        if gap < 1 and not gap_seconds:
            continue
        try:
            splits[name] = fast_slow_mutual_information(encoded.codes, codec.adapter.bins, gap, alignment.delays, name,
                                                        shifts=shifts, ci_blocks=blocks if blocks >= 2 else 0)
        except ValueError as error:
            raise DependenceError(f"--slow-gap {gap_seconds} s ({gap} frames at {codec.adapter.frame_rate:g} Hz): "
                                  f"{error}; lower --slow-gap or raise --segment") from error
    return splits


def lag_summary(lagged: tp.Sequence[LagDependence]) -> str:
    return "  lagged MI (bits), lag frames: cross / auto: " + ", ".join(
        f"{r.lag}: {r.cross_mi:.3f} / {'-' if r.auto_mi is None else format(r.auto_mi, '.3f')}" for r in lagged)


def parse_args(argv: tp.Optional[tp.Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.dependence", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="//sig/SIG, a checkpoint or XP folder, an exported model, "
                        "or encodec:24khz|48khz[:random|:<dir>|:<state dict>] (the encodec package)")
    parser.add_argument("--data", required=True, help="manifest folder egs/<name>/<split> (or its data.jsonl)")
    parser.add_argument("--compare", help="a second codec, measured on the same audio")
    parser.add_argument("--out", help="output folder (default: dependence/<checkpoint name>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    parser.add_argument("--max-frames", type=int, default=100_000, help="stop encoding after this many frames")
    parser.add_argument("--segment", type=float, default=10.0, help="seconds per encoded segment")
    parser.add_argument("--batch-size", type=int, default=8, help="segments per forward pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bandwidth", type=float,
                        help="kbps of an encodec package model (sets its active codebooks; default: all)")
    parser.add_argument("--delays", help="extra alignment, comma-separated per-codebook delays (e.g. 0,2,1,3)")
    parser.add_argument("--shifts", type=int, default=3, help="shifted nulls of the MI bias correction")
    parser.add_argument("--ci-blocks", type=int, default=20, help="jackknife blocks of the MI intervals (0: none)")
    parser.add_argument("--permutations", type=int, default=100, help="null draws of the kernel test")
    parser.add_argument("--kernel-rows", type=int, default=512, help="rows of the kernel test")
    parser.add_argument("--lags", help="comma-separated lags in frames (e.g. 0,1,4,16,64): MI between codebook i "
                        "at frame t and j at t - lag, inside segments")
    parser.add_argument("--slow-gap", type=float, default=None,
                        help="least seconds between the codes of a slow pair in the fast/slow split (default: a "
                        "quarter of --segment; 0: no split)")
    return parser.parse_args(argv)


def int_list(option: str, value: tp.Optional[str]) -> tp.Optional[tp.List[int]]:
    """A comma-separated option's ints (None when unset); DependenceError naming the option otherwise."""
    if not value:
        return None
    try:
        return [int(item) for item in value.split(",")]
    except ValueError:
        raise DependenceError(f"{option} must be comma-separated ints, got {value!r}") from None


def _short(reference: str) -> str:
    """A figure title: ``//sig/SIG`` as is, a path as its last two components."""
    if reference.startswith("//"):
        return reference
    return "/".join(Path(reference).parts[-2:])


def _label(reference: str) -> str:
    return reference.rstrip("/").split("/")[-1] or "codec"


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        out = Path(args.out) if args.out else Path("dependence") / _label(args.checkpoint)
        existing = [out / name for name in (REPORT_NAME, FIGURE_NAME) if (out / name).exists()]
        if existing and not args.overwrite:
            raise DependenceError(f"{', '.join(map(str, existing))} already exist(s): "
                                  "pass --overwrite or another --out")
        if args.max_frames < 2:
            raise DependenceError(f"--max-frames must be >= 2, got {args.max_frames}")
        lags = int_list("--lags", args.lags) or []
        delays = int_list("--delays", args.delays)
        entries = read_audio_meta(args.data)
        references = [args.checkpoint] + ([args.compare] if args.compare else [])
        results = []
        for reference in references:
            progress(f"loading {reference}")
            codec = load_codec(reference, args.device, args.bandwidth)
            num_codebooks = codec.adapter.num_codebooks
            if num_codebooks < 2:
                raise DependenceError(f"{reference} has K = {num_codebooks} codebook: dependence between "
                                      "codebooks needs at least 2")
            if delays is not None and len(delays) != num_codebooks:
                raise DependenceError(f"--delays has {len(delays)} values but {reference} has K = "
                                      f"{num_codebooks} codebooks")
            encoded = encode_manifest(codec.adapter, entries, args.segment, args.max_frames, args.batch_size,
                                      args.device)
            progress(f"{reference}: {encoded.codes.shape[0]} segments of {encoded.codes.shape[-1]} frames from "
                     f"{encoded.tracks} tracks; measuring")
            report = measure(codec, encoded, args.ci_blocks, args.shifts, args.permutations, args.kernel_rows, delays)
            splits = {}
            if args.slow_gap is None or args.slow_gap > 0:
                progress(f"{reference}: fast/slow split of the MI")
                splits = measure_fast_slow(codec, encoded, report, args.slow_gap, args.ci_blocks, args.shifts)
            lagged = []
            if lags:
                progress(f"{reference}: MI at lags {lags}")
                try:
                    lagged = lagged_mutual_information(encoded.codes, codec.adapter.bins, lags, shifts=args.shifts)
                except ValueError as error:
                    raise DependenceError(f"--lags: {error}; raise --segment for longer lags") from error
            results.append((codec, encoded, report, lagged, splits))
    except (DependenceError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    from .metrics.plots import plot_dependence
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "data": str(args.data),
        "segment_seconds": args.segment,
        "codecs": [{
            "checkpoint": codec.reference,
            "sample_rate": codec.adapter.sample_rate,
            "frame_rate": codec.adapter.frame_rate,
            "bins": codec.adapter.bins,
            "num_codebooks": codec.adapter.num_codebooks,
            "segments": encoded.codes.shape[0],
            "tracks": encoded.tracks,
            **report.to_dict(),
            **({"lagged": [asdict(r) for r in lagged]} if lagged else {}),
            **({"fast_slow": {name: split.to_dict() for name, split in splits.items()}} if splits else {}),
        } for codec, encoded, report, lagged, splits in results],
    }
    (out / REPORT_NAME).write_text(json.dumps(document, indent=2, allow_nan=False))
    plot_dependence([(_short(codec.reference), report) for codec, _, report, _, _ in results], out / FIGURE_NAME)
    for codec, _, report, lagged, splits in results:
        print(summary(codec.reference, report))
        if splits:
            print(fast_slow_summary(splits))
        if lagged:
            print(lag_summary(lagged))
    print(f"wrote {out / REPORT_NAME} and {out / FIGURE_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
