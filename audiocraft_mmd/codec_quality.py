"""``python -m audiocraft_mmd.codec_quality``: how well codecs code music, band by band, against Opus.

    python -m audiocraft_mmd.codec_quality --codec //sig/SIG [--codec //sig/OTHER] \\
        [--data egs/debian_music_16k_mono/evaluate] [--clips 60 --seconds 5] [--opus 1,2] \\
        [--music-distance] --out quality/SIG

Clips: ``--clips`` whole ``--seconds``-long pieces, evenly spaced over every piece of every track of
the manifest (each track contributes in proportion to its length; ``--clips 0``: all of them),
converted to the codecs' sample rate and channels. Each clip is coded on its own by each codec and by
Opus at the given multiples of each codec's bitrate (nominal VBR target; the bitrate Opus spent is
measured and reported, see :mod:`audiocraft_mmd.metrics.codec_quality`).

Per system: log-spectral distance and SNR per band (0-250, 250-1000, 1000-2000, 2000-4000 Hz, then
octaves), the frame-rate comb of the output (a decoder's buzz; the reference's own beside it), mel
distance, SI-SNR, and for codecs each codebook's entropy over the clips' frames. ``--music-distance``
adds the musicnn Fréchet and kernel distances between the references and each system's outputs (with
bootstrap intervals over clips). Writes ``report.json`` and ``report.md`` to ``--out``, never over an
existing report unless ``--overwrite``; Opus outputs are cached under ``$AUDIOCRAFT_MMD_CACHE/opus/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
import sys
import typing as tp

import torch

from .data.sources import evenly_spaced_pieces, read_pieces
from .errors import ConfigError
from .metrics import codec_quality as cq
from .metrics.opus import OpusUnavailable
from .metrics.usage import codebook_usage
from .utils.atomic import torch_save_atomic
from .utils.checkpoints import load_compression_model
from .utils.paths import cache_dir
from .utils.progress import Progress, say


def opus_outputs(audio: torch.Tensor, sample_rate: int, kbps: float, key: str) -> tp.Tuple[torch.Tensor, dict]:
    """Opus on every clip, cached on disk by the clips' identity and the bitrate (Opus is deterministic)."""
    name = hashlib.sha1(f"{key}|{sample_rate}|{kbps:.6f}".encode()).hexdigest()[:16]
    cache = cache_dir() / "opus" / f"{name}.pt"
    if cache.exists():
        stored = torch.load(cache, weights_only=True)
        if stored["audio"].shape == audio.shape:
            return stored["audio"], json.loads(stored["info"])
    output, info = cq.opus_clips(audio, sample_rate, kbps)
    torch_save_atomic({"audio": output, "info": json.dumps(info)}, cache)
    return output, info


def markdown(report: tp.Dict[str, tp.Any]) -> str:
    """The report as one table: a row per system."""
    bands = [f"{lo:g}-{hi:g}" for lo, hi in report["bands"]]
    distance = any("musicnn_frechet" in system for system in report["systems"])
    header = ["system", "kbit/s", *[f"LSD {band}" for band in bands], "SNR per band (dB)", "mel", "SI-SNR",
              "comb (dB)", *(["musicnn Fréchet"] if distance else []), "entropy (bit)"]
    lines = [f"{report['clips']} clips of {report['seconds']:g} s from {report['data']} at {report['sample_rate']} Hz; "
             f"LSD and SNR in dB per band (Hz); comb at {report['frame_rate']:g} Hz (reference "
             f"{report['systems'][0]['comb_reference_db']:+.2f} dB).", "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for system in report["systems"]:
        entropy = " / ".join(f"{value:.2f}" for value in system.get("entropy_bits", [])) or "-"
        row = [system["name"], f"{system['kbps']:.2f}", *[f"{system['lsd_db'][band]:.2f}" for band in bands],
               " / ".join(f"{system['snr_db'][band]:+.1f}" for band in bands), f"{system['mel_distance']:.3f}",
               f"{system['si_snr_db']:+.2f}", f"{system['comb_db']:+.2f}",
               *([f"{system['musicnn_frechet']:.2f}" if "musicnn_frechet" in system else "-"] if distance else []),
               entropy]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def parse_multiples(text: str) -> tp.List[float]:
    try:
        return [float(value) for value in text.split(",") if value.strip()]
    except ValueError:
        raise ConfigError(f"--opus must be comma-separated multiples of the codec's bitrate, got {text!r}") from None


def measure(args: argparse.Namespace) -> tp.Dict[str, tp.Any]:
    codecs = []
    for reference in args.codec:
        model, _ = load_compression_model(reference)
        codecs.append((reference, model))
    formats = {(int(model.sample_rate), int(model.channels)) for _, model in codecs}
    if len(formats) > 1:
        raise ConfigError(f"--codec: the codecs must share a sample rate and channel count to be measured on the "
                          f"same clips, got {sorted(formats)}")
    ((sample_rate, channels),) = formats
    pieces = evenly_spaced_pieces(args.data, args.seconds, args.clips or None)
    audio = read_pieces(pieces, args.seconds, sample_rate, channels)
    clips_key = "|".join(f"{entry.path}@{start:g}" for entry, start in pieces) + f"|{args.seconds}"
    frame_rate = float(codecs[0][1].frame_rate)
    bitrates = sorted({round(cq.codec_kbps(model) * multiple, 6)
                       for _, model in codecs for multiple in parse_multiples(args.opus)})
    embedder = reference_set = None
    if args.music_distance:
        from .metrics.music_distance import embed_source
        from .metrics.music_embedding import MusicEmbedder
        embedder = MusicEmbedder(min_seconds=min(1.0, args.seconds))
        reference_set = embed_source("references", as_clips("reference", audio, sample_rate), len(audio), embedder,
                                     "codec_quality")
    systems = []
    progress = Progress(len(codecs) + len(bitrates), "codec_quality")
    for reference, model in codecs:
        output, codes = cq.code_clips(model, audio)
        usage = codebook_usage(codes, int(model.cardinality))
        systems.append({"name": reference, "kind": "codec", "kbps": cq.codec_kbps(model),
                        **cq.reconstruction_figures(audio, output, sample_rate, float(model.frame_rate)),
                        "entropy_bits": usage.entropy, "entropy_max_bits": usage.max_entropy, "usage": usage.usage,
                        **distances(embedder, reference_set, output, sample_rate, reference)})
        progress.step(reference)
    for kbps in bitrates:
        output, info = opus_outputs(audio, sample_rate, kbps, clips_key)
        name = f"Opus {kbps:g} kbit/s nominal ({info['payload_kbps']:.2f} spent)"
        systems.append({"name": name, "kind": "opus", "kbps": info["payload_kbps"], **info,
                        **cq.reconstruction_figures(audio, output, sample_rate, frame_rate),
                        **distances(embedder, reference_set, output, sample_rate, name)})
        progress.step(name)
    progress.close()
    from .metrics.spectral import default_bands
    return {"data": str(args.data), "clips": len(pieces), "seconds": args.seconds, "sample_rate": sample_rate,
            "frame_rate": frame_rate, "bands": [list(band) for band in default_bands(sample_rate)],
            "opus_multiples": parse_multiples(args.opus), "systems": systems}


def as_clips(label: str, audio: torch.Tensor, sample_rate: int):
    return [(f"{label}_{index}", clip, sample_rate) for index, clip in enumerate(audio)]


def distances(embedder, reference_set, output: torch.Tensor, sample_rate: int, label: str) -> tp.Dict[str, float]:
    """musicnn Fréchet and kernel distances of ``output`` to the references (nothing without ``--music-distance``)."""
    if embedder is None:
        return {}
    from .metrics.music_distance import distance_report, embed_source
    candidate = embed_source(label, as_clips("clip", output, sample_rate), len(output), embedder, "codec_quality")
    found = distance_report(reference_set, candidate, draws=100, seed=0)
    return {f"musicnn_{name}{suffix}": value[key] for name, value in found.items()
            for suffix, key in (("", "value"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high"))}


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.codec_quality",
                                     description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", action="append", required=True,
                        help="//sig/SIG, a checkpoint, an XP folder or an exported codec; repeat to compare several")
    parser.add_argument("--data", default="egs/debian_music_16k_mono/evaluate", help="manifest folder or file")
    parser.add_argument("--clips", type=int, default=60, help="clips, evenly spaced over the split's pieces (0: all)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per clip")
    parser.add_argument("--opus", default="1,2", help="Opus bitrates as multiples of each codec's ('' for none)")
    parser.add_argument("--music-distance", action="store_true", help="add musicnn distances to the references")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", required=True, help="folder of report.json and report.md")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    try:
        if (out / "report.json").exists() and not args.overwrite:
            raise ConfigError(f"{out / 'report.json'} already exists: pass --overwrite or another --out")
        report = measure(args)
    except (ConfigError, OpusUnavailable) as error:  # CheckpointError, AudioSourceError, MusicDistanceError
        print(f"error: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, allow_nan=False))
    table = markdown(report)
    (out / "report.md").write_text(table)
    print(table)
    say("codec_quality", f"wrote {out / 'report.json'} and {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
