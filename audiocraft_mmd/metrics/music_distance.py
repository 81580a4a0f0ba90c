"""How far one set of music is from another: musicnn embeddings of audio clips, then Fréchet and kernel
distances with bootstrap intervals over whole clips (:mod:`.embedding_distance`)."""

from __future__ import annotations

from pathlib import Path
import typing as tp

import torch

from ..data.sources import Clip, read_clips, recording_rates, resolve_source, split_clips
from ..errors import ConfigError
from ..utils.progress import Progress, say


class MusicDistanceError(ConfigError):
    """Too few clips, or a clip musicnn cannot embed; the message names the source."""


def embed_source(label: str, clips: tp.Iterable[Clip], total: int, embedder: tp.Any, command: str = "audio_distance"):
    """Embeds ``(name, wav, rate)`` clips with progress lines ``[command label]`` (``total``: files, for the
    count); bad clips become :class:`MusicDistanceError`."""
    from .music_embedding import AudioInputError
    counter, names = Progress(total, f"{command} {label}"), set()

    def report(index: int, name: str, patches: int) -> None:
        if name not in names:  # a file's pieces come one after another: count files, as ``total`` does
            names.add(name)
            counter.step(f"{Path(name).name} ({patches} patches)")

    try:
        return embedder.embed_many(clips, report)
    except AudioInputError as error:
        raise MusicDistanceError(f"{label}: {error}") from error
    finally:
        counter.close()


def note_sample_rates(rates: tp.Dict[str, tp.Set[int]]) -> None:
    """Says when the sources' sample rates differ: musicnn resamples every clip to 16 kHz, and the
    distance then also counts the band the lower-rate audio lacks."""
    if len(set().union(*rates.values())) > 1:
        listed = ", ".join(f"{label} {'/'.join(str(r) for r in sorted(found))} Hz" for label, found in rates.items())
        say("audio_distance", f"note: sample rates differ ({listed}); every clip is resampled to musicnn's 16 kHz, "
            f"and the distance also counts the band above {min(min(found) for found in rates.values()) // 2} Hz "
            "that the lower-rate audio lacks")


def distance_report(reference, candidate, draws: int, seed: int) -> tp.Dict[str, tp.Any]:
    """Fréchet and kernel distances (with intervals) between two :class:`EmbeddingSet`."""
    from .embedding_distance import embedding_distances
    if len(reference.names) < 2 or len(candidate.names) < 2:
        raise MusicDistanceError(f"need at least 2 clips per side, got {len(reference.names)} and "
                                 f"{len(candidate.names)}")
    distances = embedding_distances(reference.embeddings, candidate.embeddings, reference.groups, candidate.groups,
                                    draws=draws, seed=seed)
    return {name: distance.to_dict() for name, distance in distances.items()}


def distance_to_source(clips: tp.Sequence[Clip], reference: str, model: str = "MSD_musicnn",
                       max_pieces: tp.Optional[int] = 8, draws: int = 100, seed: int = 0,
                       device: tp.Union[str, torch.device] = "cpu") -> tp.Dict[str, float]:
    """Distances of in-memory clips (e.g. an LM's generations) to a source's audio cut to the same length.

    The reference tracks are cut into pieces as long as the longest clip (at most ``max_pieces``
    per track), so both sides are embedded alike. Returns ``musicnn_frechet``, ``musicnn_kernel``
    and their ``_ci_low`` / ``_ci_high``.
    """
    from .music_embedding import MusicEmbedder
    if not clips:
        raise MusicDistanceError("no clip to compare")
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
