"""``python -m audiocraft_mmd.audio_distance``: how far is one set of music from another, offline?

Embeds every clip of two sources with musicnn (the port of :mod:`audiocraft_mmd.metrics.musicnn`:
200-d features per 3 s patch, weights from the ``musicnn`` package, no download) and reports the
Fréchet distance and the kernel distance (KID, unbiased MMD²) between the two sets of patch
embeddings, each with a bootstrap interval over whole clips. A source is:

- a folder of audio files (searched recursively: wav, flac, mp3, ogg, m4a);
- an AudioCraft manifest: ``egs/<name>/<split>`` or its ``data.jsonl(.gz)``;
- a Dora XP, ``//sig/SIG`` or its folder: the samples of its latest epoch (``samples/<epoch>/``,
  e.g. an LM's generations; ``//sig/SIG/reference`` takes the references saved beside them).

When the two sources pair file by file (the same names: a codec XP's generate-stage samples against the
references saved beside them, ``--reference //sig/SIG/reference --candidate //sig/SIG``), the report also
has what a codec does across the band (``paired``): log-spectral distance and SNR per band, mel distance,
SI-SNR and the comb at ``--frame-rate``.

Writes ``report.json`` to ``--out``, never over an existing one unless ``--overwrite``.

Sources at different sample rates (an 8 kHz codec's or LM's audio against 16 kHz references) are
compared, not refused: musicnn resamples every clip to its 16 kHz anyway, and comparing an LM's
generations with the data it was trained on is this command's main use. But the lower-rate side has
nothing above its Nyquist frequency and the distance counts that band too, so a note names both
rates and ``report.json`` records them (``sample_rates``).

Example::

    python -m audiocraft_mmd.audio_distance --reference egs/debian_music_16k_mono/evaluate \\
        --candidate //sig/SIG --out quality/SIG
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import typing as tp

from .data.sources import read_clips, recording_rates, resolve_source, split_clips
from .errors import ConfigError
from .metrics.codec_quality import paired_figures
from .metrics.music_distance import distance_report, embed_source, note_sample_rates
from .utils.progress import say

REPORT_NAME = "report.json"


def parse_args(argv: tp.Optional[tp.Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.audio_distance",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="folder, manifest (egs/<name>/<split>) or //sig/SIG")
    parser.add_argument("--candidate", required=True, help="folder, manifest or //sig/SIG (its latest samples)")
    parser.add_argument("--out", required=True, help="output folder of report.json")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    parser.add_argument("--model", default="MSD_musicnn", choices=["MSD_musicnn", "MTT_musicnn"])
    parser.add_argument("--max-seconds", type=float, help="read only the first seconds of each file")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="shortest clip accepted")
    parser.add_argument("--segment", type=float,
                        help="cut every clip into pieces of this many seconds (e.g. the length of the generations)")
    parser.add_argument("--max-pieces", type=int, help="with --segment: at most this many pieces per clip")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap draws of the intervals (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frame-rate", type=float, default=100.,
                        help="with paired sources: the codec's frame rate, where its buzz would be (Hz)")
    return parser.parse_args(argv)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) / REPORT_NAME
    try:
        if out.exists() and not args.overwrite:
            raise ConfigError(f"{out} already exists: pass --overwrite or another --out")
        sources = {"reference": resolve_source(args.reference), "candidate": resolve_source(args.candidate)}
        from .metrics.music_embedding import MusicEmbedder
        embedder = MusicEmbedder(args.model, min_seconds=args.min_seconds, device=args.device)
        sets = {}
        rates: tp.Dict[str, tp.Set[int]] = {label: set() for label in sources}
        for label, files in sources.items():
            clips = split_clips(read_clips(files, args.max_seconds), args.segment, args.max_pieces)
            sets[label] = embed_source(label, recording_rates(clips, rates[label]), len(files), embedder)
        note_sample_rates(rates)
        say("audio_distance", f"bootstrap ({args.bootstrap} draws)")
        distances = distance_report(sets["reference"], sets["candidate"], args.bootstrap, args.seed)
        paired = paired_figures(sources["reference"], sources["candidate"], args.frame_rate)
    except ConfigError as error:  # AudioSourceError, MusicDistanceError, MusicnnUnavailable
        print(f"error: {error}", file=sys.stderr)
        return 2
    document = {
        "embedding": f"musicnn {args.model} penultimate (200-d per 3 s patch at 16 kHz)",
        **{label: {"source": getattr(args, label), "clips": len(sets[label].names),
                   "patches": int(sets[label].embeddings.shape[0]), "seconds": round(sets[label].seconds, 2),
                   "sample_rates": sorted(rates[label])}
           for label in ("reference", "candidate")},
        "distances": distances,
        **({"paired": paired} if paired else {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, allow_nan=False))
    for name, value in distances.items():
        print(f"{name}: {value['value']:.4g} [{value['ci_low']:.4g}, {value['ci_high']:.4g}] "
              f"({value['level']:.0%} bootstrap over clips, {value['draws']} draws)")
    if paired:
        bands = " / ".join(paired["lsd_db"])
        print(f"paired ({paired['pairs']} files), bands {bands} Hz: LSD "
              f"{' / '.join(f'{v:.2f}' for v in paired['lsd_db'].values())} dB, SNR "
              f"{' / '.join(f'{v:+.1f}' for v in paired['snr_db'].values())} dB; mel {paired['mel_distance']:.3f}, "
              f"SI-SNR {paired['si_snr_db']:+.2f} dB, comb at {args.frame_rate:g} Hz {paired['comb_db']:+.2f} dB")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
