"""Prepare a training dataset: the default Debian music set, or any folder of your own audio.

Examples (from the repository root)::

    # the default set (about 10 h of free game music from Debian's archive; fetched with apt)
    python -m audiocraft_mmd.prepare_data --source debian_music --name debian_music_16k_mono \\
        --sample-rate 16000 --channels 1

    # your own music: every audio file below the folder, any format soundfile or ffmpeg reads
    python -m audiocraft_mmd.prepare_data --source ~/Music --name my_music --sample-rate 32000

The audio is converted once into the cache (``$AUDIOCRAFT_MMD_CACHE``, default
``~/.cache/audiocraft_mmd``, under ``datasets/<name>/audio``), split by track into
train / valid / evaluate / generate, and listed in AudioCraft manifests
``<egs>/<name>/<split>/data.jsonl``. Unreadable, empty, silent and too-short files are skipped and
listed; duplicates are kept once. Running the command again changes nothing; the source folder is
only read.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
import sys
import typing as tp

from .data import manifest as mf
from .data.debian_music import RECIPE_NAME, DebianUnavailableError
from .data.prepare import DEFAULT_MIN_DURATION, DatasetError, prepare_dataset

logger = logging.getLogger("audiocraft_mmd.prepare_data")


def default_name(source: str, sample_rate: int, channels: int) -> str:
    base = source if source == RECIPE_NAME else (Path(source).expanduser().resolve().name or "audio")
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}ch")
    rate = f"{sample_rate // 1000}k" if sample_rate % 1000 == 0 else str(sample_rate)
    return f"{base}_{rate}_{layout}"


def _fractions(text: str) -> tp.List[float]:
    try:
        values = [float(v) for v in text.split(",")]
        mf.normalize_fractions(values)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audiocraft_mmd.prepare_data",
        description=("Convert the default Debian music set, or a folder of your own audio, into an "
                     "AudioCraft dataset: converted audio in the cache, split by track, with manifests "
                     "<egs>/<name>/{train,valid,evaluate,generate}/data.jsonl."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--source", default=RECIPE_NAME,
                        help=(f"'{RECIPE_NAME}' (free game music from Debian's archive: ufoai-music, "
                              "warzone2100-music, wesnoth-<version>-music, fetched with apt-get into the "
                              "cache), or a folder of audio files, searched recursively (WAV, FLAC, Ogg, "
                              "Opus, MP3, M4A, ...; it is only read)"))
    parser.add_argument("--name", default=None,
                        help="dataset name (folder under --egs); default: <source>_<rate>_<mono|stereo>, "
                             "e.g. debian_music_16k_mono")
    parser.add_argument("--sample-rate", type=int, default=16000,
                        help="sample rate of the converted audio (the paper recipe uses 32000)")
    parser.add_argument("--channels", type=int, default=1, help="channels of the converted audio (1 = mono mix)")
    parser.add_argument("--egs", type=Path, default=Path("egs"), help="folder of the manifests")
    parser.add_argument("--audio-root", type=Path, default=None,
                        help="folder for the converted audio; default "
                             "${AUDIOCRAFT_MMD_CACHE:-~/.cache/audiocraft_mmd}/datasets/<name>/audio")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split by track")
    parser.add_argument("--min-duration", type=float, default=DEFAULT_MIN_DURATION,
                        help="skip files shorter than this (seconds)")
    parser.add_argument("--split-fractions", type=_fractions, default=[0.8, 0.08, 0.08, 0.04],
                        metavar="TRAIN,VALID,EVALUATE,GENERATE",
                        help="fractions of the tracks per split (each split gets at least one track)")
    parser.add_argument("--workers", type=int, default=None,
                        help="conversion processes (default: one per CPU, at most 2)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only warnings and the summary")
    return parser


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    name = args.name or default_name(args.source, args.sample_rate, args.channels)
    try:
        summary = prepare_dataset(source=args.source, name=name, sample_rate=args.sample_rate,
                                  channels=args.channels, egs_root=args.egs, audio_root=args.audio_root,
                                  seed=args.seed, split_fractions=args.split_fractions,
                                  min_duration=args.min_duration, workers=args.workers)
    except (DatasetError, DebianUnavailableError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary.format())
    egs = args.egs.as_posix().rstrip("/")
    print("\nTrain on it with these overrides (sample rate and channels must match the model):\n  "
          + " ".join(f"datasource.{split}={egs}/{name}/{split}" for split in mf.SPLITS)
          + f" datasource.max_sample_rate={args.sample_rate} datasource.max_channels={args.channels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
