"""``python -m audiocraft_mmd.audio_distance``: how far is one set of music from another, offline?

Embeds every clip of two sources with musicnn (the port of :mod:`audiocraft_mmd.metrics.musicnn`:
200-d features per 3 s patch, weights from the ``musicnn`` package, no download) and reports the
Fréchet distance and the kernel distance (KID, unbiased MMD²) between the two sets of patch
embeddings, each with a bootstrap interval over whole clips. A source is:

- a folder of audio files (searched recursively: wav, flac, mp3, ogg, m4a);
- an AudioCraft manifest: ``egs/<name>/<split>`` or its ``data.jsonl(.gz)``;
- a Dora XP, ``//sig/SIG`` or its folder: the samples of its latest epoch (``samples/<epoch>/``,
  e.g. an LM's generations; ``//sig/SIG/reference`` takes the references saved beside them).

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

import torch

from .errors import ConfigError
from .progress import Progress

REPORT_NAME = "report.json"
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a")


class AudioDistanceError(ConfigError):
    """A bad argument or input of the command; the message says what to change."""


def progress(message: str) -> None:
    print(f"[audio_distance] {message}", file=sys.stderr, flush=True)


def _xp_folder(sig: str) -> Path:
    from . import train
    folder = Path(train.main.dora.dir) / "xps" / sig
    if not folder.is_dir():
        raise AudioDistanceError(f"no XP {sig} in {Path(train.main.dora.dir) / 'xps'} (check AUDIOCRAFT_DORA_DIR)")
    return folder


def _xp_samples(folder: Path, reference: bool) -> tp.List[Path]:
    samples = folder / "samples"
    if reference:
        chosen = samples / "reference"
    else:
        epochs = sorted((int(p.name), p) for p in samples.glob("*") if p.is_dir() and p.name.isdigit())
        if not epochs:
            raise AudioDistanceError(f"XP {folder.name} has no samples yet ({samples}/<epoch>/): run its generate stage")
        chosen = epochs[-1][1]
    # Only this folder's files: prompts live in a subfolder.
    return sorted(p for p in chosen.glob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)


def resolve_source(source: str) -> tp.List[Path]:
    """Audio files of a source (see module docstring), in a stable order.

    Raises:
        AudioDistanceError: If the source does not exist or holds no audio.
    """
    reference = False
    if source.rstrip("/").endswith("/reference") and (source.startswith("//sig/") or
                                                        (Path(source).parent / "history.json").exists()):
        reference, source = True, source.rstrip("/")[:-len("/reference")]
    if source.startswith("//sig/"):
        files = _xp_samples(_xp_folder(source[len("//sig/"):].strip("/")), reference)
    else:
        path = Path(source)
        if not path.exists():
            raise AudioDistanceError(f"{source} does not exist (give a folder of audio, egs/<name>/<split>, "
                                     "a data.jsonl or //sig/SIG)")
        manifest = None
        if path.is_file() and path.name.endswith((".jsonl", ".jsonl.gz")):
            manifest = path
        elif path.is_dir():
            manifest = next((m for m in (path / "data.jsonl", path / "data.jsonl.gz") if m.exists()), None)
        if manifest is not None:
            from audiocraft.data.audio_dataset import load_audio_meta
            try:
                files = [Path(entry.path) for entry in load_audio_meta(manifest)]
            except (ValueError, KeyError, TypeError, OSError) as error:  # malformed JSON lines, missing fields
                raise AudioDistanceError(f"manifest {manifest} is malformed: {type(error).__name__}: {error}") from None
        elif path.is_dir() and (path / "samples").is_dir() and (path / "history.json").exists():
            files = _xp_samples(path, reference)
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        else:
            raise AudioDistanceError(f"{source} is neither a folder, a manifest (.jsonl) nor an XP")
    if not files:
        raise AudioDistanceError(f"{source} holds no audio file ({', '.join(AUDIO_EXTENSIONS)})")
    return files


def read_clips(files: tp.Sequence[Path], max_seconds: tp.Optional[float] = None
               ) -> tp.Iterator[tp.Tuple[str, torch.Tensor, int]]:
    """``(path, wav [C, T], sample_rate)`` of each file (its first ``max_seconds`` if given); a file
    that cannot be read is an error."""
    from audiocraft.data.audio import audio_read
    for path in files:
        try:
            wav, rate = audio_read(path, duration=max_seconds or -1.0)
        except Exception as error:  # soundfile / ffmpeg report corrupt files in many ways
            raise AudioDistanceError(f"{path}: cannot read audio ({type(error).__name__}: "
                                     f"{str(error).strip().splitlines()[-1] if str(error).strip() else 'no detail'})") from error
        yield str(path), wav, rate


def split_clips(clips: tp.Iterable[tp.Tuple[str, torch.Tensor, int]], seconds: tp.Optional[float],
                max_pieces: tp.Optional[int] = None) -> tp.Iterator[tp.Tuple[str, torch.Tensor, int]]:
    """Whole ``seconds``-long pieces of each clip (the tail dropped; a shorter clip is kept as is),
    at most ``max_pieces`` per clip; pieces keep their clip's name, so they share its bootstrap group.
    ``seconds=None`` passes the clips through."""
    for name, wav, rate in clips:
        size = int(round(seconds * rate)) if seconds else wav.shape[-1]
        count = max(1, wav.shape[-1] // size)
        for piece in range(count if max_pieces is None else min(count, max_pieces)):
            yield name, wav[..., piece * size:(piece + 1) * size], rate


def recording_rates(clips: tp.Iterable[tp.Tuple[str, torch.Tensor, int]], rates: tp.Set[int]
                    ) -> tp.Iterator[tp.Tuple[str, torch.Tensor, int]]:
    """Passes ``(name, wav, rate)`` clips through, adding each clip's rate to ``rates``."""
    for name, wav, rate in clips:
        rates.add(int(rate))
        yield name, wav, rate


def note_sample_rates(rates: tp.Dict[str, tp.Set[int]]) -> None:
    """Says when the sources' sample rates differ (see the module docstring)."""
    if len(set().union(*rates.values())) > 1:
        listed = ", ".join(f"{label} {'/'.join(str(r) for r in sorted(found))} Hz" for label, found in rates.items())
        progress(f"note: sample rates differ ({listed}); every clip is resampled to musicnn's 16 kHz, and the "
                 f"distance also counts the band above {min(min(found) for found in rates.values()) // 2} Hz "
                 "that the lower-rate audio lacks")


def embed_source(label: str, clips: tp.Iterable[tp.Tuple[str, torch.Tensor, int]], total: int, embedder: tp.Any):
    """Embeds ``(name, wav, rate)`` clips with progress lines (``total``: files, for the count);
    bad clips become :class:`AudioDistanceError`."""
    from .metrics.music_embedding import AudioInputError
    counter, names = Progress(total, f"audio_distance {label}"), set()

    def report(index: int, name: str, patches: int) -> None:
        if name not in names:  # a file's pieces come one after another: count files, as ``total`` does
            names.add(name)
            counter.step(f"{Path(name).name} ({patches} patches)")

    try:
        return embedder.embed_many(clips, report)
    except AudioInputError as error:
        raise AudioDistanceError(f"{label}: {error}") from error
    finally:
        counter.close()


def distance_report(reference, candidate, draws: int, seed: int) -> tp.Dict[str, tp.Any]:
    """Fréchet and kernel distances (with intervals) between two :class:`EmbeddingSet`."""
    from .metrics.embedding_distance import embedding_distances
    if len(reference.names) < 2 or len(candidate.names) < 2:
        raise AudioDistanceError(f"need at least 2 clips per side, got {len(reference.names)} and "
                                 f"{len(candidate.names)}")
    distances = embedding_distances(reference.embeddings, candidate.embeddings, reference.groups, candidate.groups,
                                    draws=draws, seed=seed)
    return {name: distance.to_dict() for name, distance in distances.items()}


def distance_to_source(clips: tp.Sequence[tp.Tuple[str, torch.Tensor, int]], reference: str, model: str = "MSD_musicnn",
                       max_pieces: tp.Optional[int] = 8, draws: int = 100, seed: int = 0,
                       device: tp.Union[str, torch.device] = "cpu") -> tp.Dict[str, float]:
    """Distances of in-memory clips (e.g. an LM's generations) to a source's audio cut to the same length.

    The reference tracks are cut into pieces as long as the longest clip (at most ``max_pieces``
    per track), so both sides are embedded alike. Returns ``musicnn_frechet``, ``musicnn_kernel``
    and their ``_ci_low`` / ``_ci_high``.
    """
    from .metrics.music_embedding import MusicEmbedder
    if not clips:
        raise AudioDistanceError("no clip to compare")
    seconds = max(wav.shape[-1] / rate for _, wav, rate in clips)
    embedder = MusicEmbedder(model, min_seconds=min(1.0, seconds), device=device)
    rates: tp.Dict[str, tp.Set[int]] = {"generated": set(), "reference": set()}
    candidate = embed_source("generated", recording_rates(clips, rates["generated"]), len(clips), embedder)
    files = resolve_source(reference)
    reference_set = embed_source("reference", recording_rates(split_clips(read_clips(files), seconds, max_pieces),
                                                              rates["reference"]), len(files), embedder)
    note_sample_rates(rates)
    distances = distance_report(reference_set, candidate, draws, seed)
    metrics = {}
    for name, value in distances.items():
        metrics[f"musicnn_{name}"] = value["value"]
        metrics[f"musicnn_{name}_ci_low"], metrics[f"musicnn_{name}_ci_high"] = value["ci_low"], value["ci_high"]
    return metrics


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
    return parser.parse_args(argv)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) / REPORT_NAME
    try:
        if out.exists() and not args.overwrite:
            raise AudioDistanceError(f"{out} already exists: pass --overwrite or another --out")
        sources = {"reference": resolve_source(args.reference), "candidate": resolve_source(args.candidate)}
        from .metrics.music_embedding import MusicEmbedder
        embedder = MusicEmbedder(args.model, min_seconds=args.min_seconds, device=args.device)
        sets, rates = {}, {label: set() for label in sources}
        for label, files in sources.items():
            clips = split_clips(read_clips(files, args.max_seconds), args.segment, args.max_pieces)
            sets[label] = embed_source(label, recording_rates(clips, rates[label]), len(files), embedder)
        note_sample_rates(rates)
        progress(f"bootstrap ({args.bootstrap} draws)")
        distances = distance_report(sets["reference"], sets["candidate"], args.bootstrap, args.seed)
    except ConfigError as error:  # AudioDistanceError, MusicnnUnavailable
        print(f"error: {error}", file=sys.stderr)
        return 2
    document = {
        "embedding": f"musicnn {args.model} penultimate (200-d per 3 s patch at 16 kHz)",
        **{label: {"source": getattr(args, label), "clips": len(sets[label].names),
                   "patches": int(sets[label].embeddings.shape[0]), "seconds": round(sets[label].seconds, 2),
                   "sample_rates": sorted(rates[label])}
           for label in ("reference", "candidate")},
        "distances": distances,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, allow_nan=False))
    for name, value in distances.items():
        print(f"{name}: {value['value']:.4g} [{value['ci_low']:.4g}, {value['ci_high']:.4g}] "
              f"({value['level']:.0%} bootstrap over clips, {value['draws']} draws)")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
