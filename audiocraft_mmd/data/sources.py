"""Audio sources the commands read: a folder of audio, an AudioCraft manifest or a Dora XP's samples.

A source is:

- a folder of audio files (searched recursively: wav, flac, mp3, ogg, m4a);
- an AudioCraft manifest: ``egs/<name>/<split>`` or its ``data.jsonl(.gz)``;
- a Dora XP, ``//sig/SIG`` or its folder: the samples of its latest epoch (``samples/<epoch>/``,
  e.g. an LM's generations; ``//sig/SIG/reference`` takes the references saved beside them).
"""

from __future__ import annotations

from pathlib import Path
import typing as tp

import torch

from ..errors import ConfigError
from ..utils.xps import xp_folder

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
Clip = tp.Tuple[str, torch.Tensor, int]  # (name, wav [C, T], sample rate)


class AudioSourceError(ConfigError):
    """A source that does not exist, holds no audio or cannot be read; the message names it."""


def find_manifest(data: tp.Union[str, Path]) -> Path:
    """The manifest file of ``egs/<name>/<split>`` (its ``data.jsonl(.gz)``), or ``data`` itself if it is one.

    Raises:
        AudioSourceError: If there is no such folder or file, or the folder holds no manifest.
    """
    path = Path(data)
    if path.is_dir():
        found = [candidate for candidate in (path / "data.jsonl", path / "data.jsonl.gz") if candidate.exists()]
        if not found:
            raise AudioSourceError(f"no manifest in {path}: expected data.jsonl or data.jsonl.gz "
                                   "(see `python -m audiocraft_mmd.prepare_data`)")
        return found[0]
    if not path.exists():
        raise AudioSourceError(f"manifest {data} does not exist (give egs/<name>/<split> or its data.jsonl)")
    return path


def read_audio_meta(data: tp.Union[str, Path]) -> tp.List[tp.Any]:
    """AudioCraft ``AudioMeta`` entries of a manifest (see :func:`find_manifest`).

    Raises:
        AudioSourceError: If the manifest is missing, malformed or empty.
    """
    from audiocraft.data.audio_dataset import load_audio_meta
    path = find_manifest(data)
    try:
        entries = load_audio_meta(path)
    except (ValueError, KeyError, TypeError, OSError) as error:  # malformed JSON lines, missing fields
        raise AudioSourceError(f"manifest {path} is malformed: {type(error).__name__}: {error}") from None
    if not entries:
        raise AudioSourceError(f"manifest {path} lists no audio")
    return entries


def xp_samples(folder: Path, reference: bool = False) -> tp.List[Path]:
    """The audio an XP's generate stage wrote last (``samples/<latest epoch>/``), or its references.

    Raises:
        AudioSourceError: If the XP has no samples yet.
    """
    samples = folder / "samples"
    if reference:
        chosen = samples / "reference"
    else:
        epochs = sorted((int(p.name), p) for p in samples.glob("*") if p.is_dir() and p.name.isdigit())
        if not epochs:
            raise AudioSourceError(f"XP {folder.name} has no samples yet ({samples}/<epoch>/): run its generate stage")
        chosen = epochs[-1][1]
    # Only this folder's files: prompts live in a subfolder.
    return sorted(p for p in chosen.glob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)


def resolve_source(source: str) -> tp.List[Path]:
    """Audio files of a source (see the module docstring), in a stable order.

    Raises:
        AudioSourceError: If the source does not exist or holds no audio.
    """
    reference = False
    if source.rstrip("/").endswith("/reference") and (source.startswith("//sig/") or
                                                        (Path(source).parent / "history.json").exists()):
        reference, source = True, source.rstrip("/")[:-len("/reference")]
    if source.startswith("//sig/"):
        try:
            folder = xp_folder(source)
        except ConfigError as error:
            raise AudioSourceError(str(error)) from None
        files = xp_samples(folder, reference)
    else:
        path = Path(source)
        if not path.exists():
            raise AudioSourceError(f"{source} does not exist (give a folder of audio, egs/<name>/<split>, "
                                   "a data.jsonl or //sig/SIG)")
        is_manifest = (path.is_file() and path.name.endswith((".jsonl", ".jsonl.gz"))) or \
            (path.is_dir() and any((path / name).exists() for name in ("data.jsonl", "data.jsonl.gz")))
        if is_manifest:
            files = [Path(entry.path) for entry in read_audio_meta(path)]
        elif path.is_dir() and (path / "samples").is_dir() and (path / "history.json").exists():
            files = xp_samples(path, reference)
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        else:
            raise AudioSourceError(f"{source} is neither a folder, a manifest (.jsonl) nor an XP")
    if not files:
        raise AudioSourceError(f"{source} holds no audio file ({', '.join(AUDIO_EXTENSIONS)})")
    return files


def read_clips(files: tp.Sequence[Path], max_seconds: tp.Optional[float] = None) -> tp.Iterator[Clip]:
    """``(path, wav [C, T], sample_rate)`` of each file (its first ``max_seconds`` if given); a file
    that cannot be read is an error."""
    from audiocraft.data.audio import audio_read
    for path in files:
        try:
            wav, rate = audio_read(path, duration=max_seconds or -1.0)
        except Exception as error:  # soundfile / ffmpeg report corrupt files in many ways
            detail = str(error).strip().splitlines()[-1] if str(error).strip() else "no detail"
            raise AudioSourceError(f"{path}: cannot read audio ({type(error).__name__}: {detail})") from error
        yield str(path), wav, rate


def split_clips(clips: tp.Iterable[Clip], seconds: tp.Optional[float],
                max_pieces: tp.Optional[int] = None) -> tp.Iterator[Clip]:
    """Whole ``seconds``-long pieces of each clip (the tail dropped; a shorter clip is kept as is),
    at most ``max_pieces`` per clip; pieces keep their clip's name, so they share its bootstrap group.
    ``seconds=None`` passes the clips through."""
    for name, wav, rate in clips:
        size = int(round(seconds * rate)) if seconds else wav.shape[-1]
        count = max(1, wav.shape[-1] // size)
        for piece in range(count if max_pieces is None else min(count, max_pieces)):
            yield name, wav[..., piece * size:(piece + 1) * size], rate


def recording_rates(clips: tp.Iterable[Clip], rates: tp.Set[int]) -> tp.Iterator[Clip]:
    """Passes ``(name, wav, rate)`` clips through, adding each clip's rate to ``rates``."""
    for name, wav, rate in clips:
        rates.add(int(rate))
        yield name, wav, rate


def evenly_spaced_pieces(data: tp.Union[str, Path], seconds: float,
                         count: tp.Optional[int] = None) -> tp.List[tp.Tuple[tp.Any, float]]:
    """``(AudioMeta, start in seconds)`` of ``count`` whole ``seconds``-long pieces of a manifest's tracks,
    evenly spaced over the list of every piece (tracks in manifest order), so that each track contributes
    in proportion to its length; every piece when ``count`` is None or larger than their number.

    Raises:
        AudioSourceError: If the manifest is missing or no track lasts ``seconds``.
    """
    entries = read_audio_meta(data)
    pieces = [(entry, index * seconds) for entry in entries for index in range(int(entry.duration // seconds))]
    if not pieces:
        raise AudioSourceError(f"no track of {data} lasts {seconds} s")
    if count is not None and count < len(pieces):
        step = (len(pieces) - 1) / max(count - 1, 1)
        pieces = [pieces[round(i * step)] for i in range(count)]
    return pieces


def read_pieces(pieces: tp.Sequence[tp.Tuple[tp.Any, float]], seconds: float, sample_rate: int,
                channels: int) -> torch.Tensor:
    """The pieces of :func:`evenly_spaced_pieces` as ``[B, C, T]`` at ``sample_rate`` and ``channels``."""
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    length = int(round(seconds * sample_rate))
    clips = []
    for entry, start in pieces:
        wav, rate = audio_read(entry.path, seek_time=start, duration=seconds)
        wav = convert_audio(wav, rate, sample_rate, channels)[..., :length]
        clips.append(torch.nn.functional.pad(wav, (0, length - wav.shape[-1])))
    return torch.stack(clips)
