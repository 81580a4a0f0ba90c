"""Track-level splits and AudioCraft manifests (``egs/<name>/<split>/data.jsonl``).

Each line of a manifest is one :class:`audiocraft.data.audio_dataset.AudioMeta` as JSON: ``path``
(absolute), ``duration`` (seconds), ``sample_rate``, ``amplitude``, ``weight`` and ``info_path``.
A track goes to exactly one split. The assignment is seeded and stable: tracks are ordered by a
hash of the seed and the track's identity (its content hash), so adding a track to a folder moves
few others between splits.
"""

from __future__ import annotations

from dataclasses import dataclass
import gzip
import hashlib
import json
import math
import os
from pathlib import Path
import typing as tp

SPLITS = ("train", "valid", "evaluate", "generate")
DEFAULT_SPLIT_FRACTIONS: tp.Dict[str, float] = {"train": 0.80, "valid": 0.08, "evaluate": 0.08,
                                                 "generate": 0.04}
MANIFEST_NAME = "data.jsonl"


class SplitError(ValueError):
    pass


@dataclass(frozen=True)
class ManifestEntry:
    """One converted track, as AudioCraft's AudioMeta wants it."""
    path: str
    duration: float
    sample_rate: int
    amplitude: tp.Optional[float] = None
    weight: tp.Optional[float] = None
    info_path: tp.Optional[str] = None

    def to_json(self) -> str:
        return json.dumps({"path": self.path, "duration": round(self.duration, 6),
                           "sample_rate": self.sample_rate, "amplitude": self.amplitude,
                           "weight": self.weight, "info_path": self.info_path})


def normalize_fractions(split_fractions: tp.Union[tp.Mapping[str, float], tp.Sequence[float], None]
                        ) -> tp.Dict[str, float]:
    """Split fractions as a dict over SPLITS summing to 1 (accepts a dict or 4 numbers)."""
    if split_fractions is None:
        split_fractions = DEFAULT_SPLIT_FRACTIONS
    if isinstance(split_fractions, tp.Mapping):
        unknown = set(split_fractions) - set(SPLITS)
        if unknown:
            raise SplitError(f"unknown split(s) {sorted(unknown)}; expected {list(SPLITS)}")
        values = [float(split_fractions.get(split, 0.0)) for split in SPLITS]
    else:
        values = [float(v) for v in split_fractions]
        if len(values) != len(SPLITS):
            raise SplitError(f"expected {len(SPLITS)} split fractions ({', '.join(SPLITS)}), got {values}")
    if any(v < 0 or not math.isfinite(v) for v in values) or sum(values) <= 0:
        raise SplitError(f"split fractions must be non-negative and not all zero, got {values}")
    if any(v <= 0 for v in values[1:]) or values[0] <= 0:
        raise SplitError(f"every split needs a positive fraction, got {dict(zip(SPLITS, values))}")
    total = sum(values)
    return {split: round(v / total, 6) for split, v in zip(SPLITS, values)}


def split_counts(num_tracks: int, fractions: tp.Mapping[str, float]) -> tp.Dict[str, int]:
    """Tracks per split: at least one in each; train gets the remainder."""
    if num_tracks < len(SPLITS):
        raise SplitError(f"{num_tracks} usable track(s): at least {len(SPLITS)} are needed, one per "
                         f"split ({', '.join(SPLITS)})")
    counts = {split: max(1, round(fractions[split] * num_tracks)) for split in SPLITS[1:]}
    while num_tracks - sum(counts.values()) < 1:  # tiny sets: shrink the largest held-out split
        largest = max(counts, key=lambda s: (counts[s], s))
        counts[largest] -= 1
    counts = {"train": num_tracks - sum(counts.values()), **counts}
    return counts


def assign_splits(track_ids: tp.Sequence[str], seed: int,
                  fractions: tp.Mapping[str, float]) -> tp.Dict[str, tp.List[int]]:
    """Indices of `track_ids` in each split (disjoint, covering all tracks)."""
    counts = split_counts(len(track_ids), fractions)
    order = sorted(range(len(track_ids)),
                   key=lambda i: hashlib.sha1(f"{seed}:{track_ids[i]}".encode()).hexdigest())
    splits: tp.Dict[str, tp.List[int]] = {}
    start = 0
    # Held-out splits first, so the smallest splits are the most stable when tracks are added.
    for split in reversed(SPLITS):
        splits[split] = sorted(order[start:start + counts[split]])
        start += counts[split]
    return {split: splits[split] for split in SPLITS}


def manifest_text(entries: tp.Iterable[ManifestEntry]) -> str:
    return "".join(e.to_json() + "\n" for e in sorted(entries, key=lambda e: e.path))


def text_sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def file_sha1(path: Path) -> tp.Optional[str]:
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return None


def write_if_changed(path: Path, text: str) -> bool:
    """Writes `text` atomically unless the file already holds it. Returns True when written."""
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def read_manifest(path: Path) -> tp.List[dict]:
    """Entries of a manifest (``.jsonl`` or ``.jsonl.gz``); ValueError naming a malformed line."""
    opener = gzip.open if str(path).endswith(".gz") else open
    entries = []
    with opener(path, "rt") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"line {number} of {path} is not JSON ({error})") from None
            if not isinstance(entry, dict) or "path" not in entry or "duration" not in entry:
                raise ValueError(f"line {number} of {path} is not an audio entry with 'path' and 'duration'")
            entries.append(entry)
    return entries
