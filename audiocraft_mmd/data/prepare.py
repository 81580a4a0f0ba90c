"""Turn a folder of audio (or the default Debian music set) into an AudioCraft dataset.

``prepare_dataset`` does, in order:

1. collect the input files: the Debian packages of :mod:`.debian_music` for the recipe name
   ``"debian_music"``, else every audio file below the given folder (recursively);
2. convert each file once (in a small process pool) to the target sample rate and channels, into
   ``audio_root`` (default ``$AUDIOCRAFT_MMD_CACHE/datasets/<name>/audio``, shared by every clone of
   the repository), skipping unreadable, empty, silent and too-short files with a logged reason;
3. drop duplicates: byte-identical files, then the same audio in another format or package
   (:mod:`.fingerprint`); the first copy in path order is kept;
4. split by track, seeded (:mod:`.manifest`), and write ``egs/<name>/<split>/data.jsonl`` for the
   four splits and ``egs/<name>/dataset.json`` (what was prepared, from what, with which settings).

Running it again rewrites nothing that is unchanged. It never writes outside ``audio_root``, the
cache and ``egs/<name>/``, never modifies input files, and refuses to overwrite manifests it did not
write itself. ``ensure_dataset`` (called by the training job at start-up) returns at once when the
recorded dataset matches the request, and prepares it otherwise.
"""

from __future__ import annotations

import concurrent.futures
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
from pathlib import Path
import time
import typing as tp

from ..utils.paths import cache_dir
from ..utils.progress import Progress
from . import manifest as mf
from .convert import AUDIO_EXTENSIONS, ConversionJob, TrackResult, init_worker, process, reuse, sha1_of_file
from .debian_music import RECIPE_NAME, fetch_debian_music
from .fingerprint import Fingerprint, find_duplicates

logger = logging.getLogger(__name__)

DATASET_RECORD = "dataset.json"
RECORD_FORMAT = 1
AUDIO_ROOT_MARKER = ".audiocraft_mmd_audio_root"
DEFAULT_MIN_DURATION = 30.0
DEFAULT_SILENCE_RMS = 1e-4  # -80 dBFS
RECIPES = (RECIPE_NAME,)

SplitFractions = tp.Union[tp.Mapping[str, float], tp.Sequence[float], None]


class DatasetError(RuntimeError):
    """The dataset cannot be prepared (no usable audio, unsafe paths, ...)."""


class NoUsableAudioError(DatasetError):
    pass


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class DuplicateFile:
    path: str          # the input that was dropped
    duplicate_of: str  # the input that was kept
    reason: str


@dataclass
class DatasetSummary:
    name: str
    source: str
    sample_rate: int
    channels: int
    seed: int
    egs_dir: Path
    audio_root: Path
    manifests: tp.Dict[str, Path] = field(default_factory=dict)
    tracks: tp.Dict[str, int] = field(default_factory=dict)
    hours: tp.Dict[str, float] = field(default_factory=dict)
    skipped: tp.List[SkippedFile] = field(default_factory=list)
    duplicates: tp.List[DuplicateFile] = field(default_factory=list)
    packages: tp.Dict[str, str] = field(default_factory=dict)  # Debian package -> version
    converted: int = 0     # files decoded and written by this call
    reused: int = 0        # files found already converted (or already known as skipped)
    elapsed: float = 0.0   # seconds spent by this call
    prepared: bool = True  # False when ensure_dataset found the dataset ready

    @property
    def total_tracks(self) -> int:
        return sum(self.tracks.values())

    @property
    def total_hours(self) -> float:
        return sum(self.hours.values())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["egs_dir"], data["audio_root"] = str(self.egs_dir), str(self.audio_root)
        data["manifests"] = {k: str(v) for k, v in self.manifests.items()}
        return data

    def format(self) -> str:
        lines = [f"Dataset '{self.name}' from {self.source}: {self.total_tracks} tracks, "
                 f"{self.total_hours:.2f} h at {self.sample_rate} Hz, {self.channels} channel(s)"]
        for split in mf.SPLITS:
            if split in self.tracks:
                lines.append(f"  {split:<9} {self.tracks[split]:5d} tracks {self.hours[split]:7.2f} h  "
                             f"{self.manifests[split]}")
        lines.append(f"  audio in {self.audio_root}")
        if self.prepared:
            lines.append(f"  {self.converted} file(s) converted, {self.reused} reused, "
                         f"{len(self.skipped)} skipped, {len(self.duplicates)} duplicate(s) dropped, "
                         f"in {self.elapsed:.1f} s")
        for item in self.skipped:
            lines.append(f"  skipped   {item.path}: {item.reason}")
        for dup in self.duplicates:
            lines.append(f"  duplicate {dup.path} = {dup.duplicate_of} ({dup.reason})")
        return "\n".join(lines)


def default_audio_root(name: str) -> Path:
    return cache_dir() / "datasets" / name / "audio"


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise DatasetError(f"invalid dataset name {name!r}: use a plain folder name such as 'my_music'")


def _normalize_source(source: tp.Union[str, Path]) -> str:
    text = str(source)
    if text in RECIPES and not Path(text).is_dir():
        return text
    return str(Path(text).expanduser().resolve())


def _settings(source: str, sample_rate: int, channels: int, seed: int, fractions: tp.Dict[str, float],
              min_duration: float, audio_root: Path) -> dict:
    return {"source": source, "sample_rate": int(sample_rate), "channels": int(channels), "seed": int(seed),
            "split_fractions": fractions, "min_duration": float(min_duration), "audio_root": str(audio_root)}


@contextmanager
def _locked(path: Path):
    """Exclusive lock (between processes) on `path`, e.g. two jobs preparing the same dataset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _is_within(path: Path, other: Path) -> bool:
    return path == other or other in path.parents


def _prepare_audio_root(audio_root: Path, source_dir: tp.Optional[Path]) -> None:
    if source_dir is not None and (_is_within(audio_root, source_dir) or _is_within(source_dir, audio_root)):
        raise DatasetError(f"the audio output folder {audio_root} and the source folder {source_dir} overlap: "
                           f"choose another --audio-root")
    marker = audio_root / AUDIO_ROOT_MARKER
    if audio_root.is_dir() and not marker.exists() and any(audio_root.iterdir()):
        raise DatasetError(f"{audio_root} already holds files not written by prepare_data; refusing to write "
                           f"there: choose another --audio-root (or --name)")
    audio_root.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.write_text("Converted audio written by `python -m audiocraft_mmd.prepare_data`.\n")


def scan_folder(folder: Path) -> tp.Tuple[tp.List[tp.Tuple[str, Path]], int]:
    """(key, path) of the audio files below `folder` (recursive, sorted) and the number of others."""
    found, ignored = [], 0
    seen = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symbolic link back into the tree
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if filename.startswith(".") or path.suffix.lower() not in AUDIO_EXTENSIONS:
                ignored += 1
                continue
            found.append((path.relative_to(folder).as_posix(), path))
    return found, ignored


def _run_jobs(jobs: tp.List[ConversionJob], workers: int) -> tp.Iterator[TrackResult]:
    todo = []
    for job in jobs:  # what an earlier run did is reused here, without starting workers
        result = reuse(job)
        if result is None:
            todo.append(job)
        else:
            yield result
    jobs = todo
    if jobs:
        job = jobs[0]
        logger.info("Converting %d file(s) to %d Hz, %d channel(s) into %s (%d worker(s))...", len(jobs),
                    job.sample_rate, job.channels, job.audio_root, max(1, min(workers, len(jobs))))
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield process(job)
        return
    # spawn: the caller may be a training process with threads (fork would be unsafe).
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                initializer=init_worker) as pool:
        # Largest inputs first, so that the last long file does not run alone at the end.
        futures = [pool.submit(process, job) for job in sorted(jobs, key=lambda j: -j.size)]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def _fmt_duration(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def prepare_dataset(source: tp.Union[str, Path], name: str, sample_rate: int, channels: int,
                    egs_root: Path = Path("egs"), audio_root: tp.Optional[Path] = None, seed: int = 0,
                    split_fractions: SplitFractions = None, min_duration: float = DEFAULT_MIN_DURATION,
                    *, workers: tp.Optional[int] = None, silence_rms: float = DEFAULT_SILENCE_RMS
                    ) -> DatasetSummary:
    """Prepares dataset `name` from `source` ("debian_music" or a folder); see the module doc.

    Args:
        source: the recipe name ``"debian_music"`` or a folder of audio files (searched recursively,
            any format soundfile or ffmpeg reads; the folder is only read).
        name: dataset name: manifests go to ``<egs_root>/<name>/<split>/data.jsonl``.
        sample_rate, channels: format of the converted audio (channels: 1 = mean of the input's).
        egs_root: folder of the manifests (relative paths are relative to the current directory).
        audio_root: folder of the converted audio; default ``<cache>/datasets/<name>/audio``.
        seed: seed of the split by track.
        split_fractions: fractions of tracks for train/valid/evaluate/generate (dict or 4 numbers);
            default 80/8/8/4 %. Each split gets at least one track.
        min_duration: shorter files (seconds) are skipped.
        workers: conversion processes (default: up to 2, one per CPU).
        silence_rms: files whose RMS level is below this are skipped as silent.
    Raises:
        NoUsableAudioError: no (or fewer than 4) usable tracks.
        DatasetError: unsafe or invalid paths or settings.
        DebianUnavailableError: "debian_music" on a system without apt.
    """
    start = time.time()
    _check_name(name)
    if int(sample_rate) <= 0 or int(channels) <= 0:
        raise DatasetError(f"sample_rate and channels must be positive, got {sample_rate} and {channels}")
    fractions = mf.normalize_fractions(split_fractions)
    source_text = _normalize_source(source)
    egs_dir = Path(egs_root).expanduser().resolve() / name
    root = Path(audio_root).expanduser().resolve() if audio_root is not None else default_audio_root(name).resolve()
    if workers is None:
        workers = max(1, min(2, os.cpu_count() or 1))

    lock = cache_dir() / "locks" / (hashlib.sha1(str(root).encode()).hexdigest()[:16] + ".lock")
    with _locked(lock):
        summary = DatasetSummary(name=name, source=source_text, sample_rate=int(sample_rate),
                                 channels=int(channels), seed=int(seed), egs_dir=egs_dir, audio_root=root)
        # 1. inputs
        ignored = 0
        if source_text in RECIPES:
            logger.info("Preparing '%s' from the Debian music packages (cache: %s)", name, cache_dir())
            debian = fetch_debian_music(cache_dir())
            inputs, summary.packages, source_dir = debian.files, debian.packages, None
            origin = "the Debian music packages " + ", ".join(debian.packages)
        else:
            source_dir = Path(source_text)
            if not source_dir.is_dir():
                hint = f" (or the recipe name {', '.join(repr(r) for r in RECIPES)})"
                kind = "is not a folder" if source_dir.exists() else "does not exist"
                raise DatasetError(f"source {source_dir} {kind}: pass a folder of audio files{hint}")
            logger.info("Preparing '%s' from the audio files in %s", name, source_dir)
            inputs, ignored = scan_folder(source_dir)
            origin = f"the folder {source_dir}"
        if not inputs:
            raise NoUsableAudioError(f"no audio file found in {origin}"
                                     + (f" ({ignored} other files ignored)" if ignored else "")
                                     + f"; extensions looked for: {' '.join(sorted(AUDIO_EXTENSIONS))}")
        _prepare_audio_root(root, source_dir)

        # 2. exact copies, then conversion
        logger.info("Hashing %d input files...", len(inputs))
        first_by_sha1: tp.Dict[str, str] = {}
        jobs: tp.List[ConversionJob] = []
        for key, path in inputs:
            try:
                digest, size = sha1_of_file(path), path.stat().st_size
            except OSError as error:
                summary.skipped.append(SkippedFile(str(path), f"unreadable ({error.strerror or error})"))
                continue
            if digest in first_by_sha1:
                summary.duplicates.append(DuplicateFile(str(path), first_by_sha1[digest], "identical file"))
                continue
            first_by_sha1[digest] = str(path)
            jobs.append(ConversionJob(source=str(path), key=key, audio_root=str(root), sha1=digest, size=size,
                                      sample_rate=int(sample_rate), channels=int(channels),
                                      min_duration=float(min_duration), silence_rms=float(silence_rms)))
        results: tp.Dict[str, TrackResult] = {}
        progress = Progress(len(jobs), "prepare_data", enabled=logger.isEnabledFor(logging.INFO))
        for result in _run_jobs(jobs, workers):
            results[result.key] = result
            summary.reused += result.reused
            summary.converted += result.ok and not result.reused
            if result.ok:
                action = "reused" if result.reused else "converted"
                progress.step(f"{action} {result.key} ({_fmt_duration(result.duration)}, {result.seconds:.1f} s)")
            else:
                progress.step(f"skipped {result.key}: {result.reason}")
        progress.close()
        if summary.reused:
            logger.info("%d file(s) handled by an earlier run: nothing to do for them", summary.reused)
        ordered = [results[job.key] for job in jobs]  # input order (sorted by package / path)
        summary.skipped.extend(SkippedFile(r.source, r.reason) for r in ordered if not r.ok)
        # A copy of a skipped file is skipped for the same reason, not a duplicate.
        bad = {s.path: s.reason for s in summary.skipped}
        for dup in list(summary.duplicates):
            if dup.duplicate_of in bad:
                summary.duplicates.remove(dup)
                summary.skipped.append(SkippedFile(dup.path, f"{bad[dup.duplicate_of]} (same file as "
                                                             f"{dup.duplicate_of})"))
        usable = [r for r in ordered if r.ok]

        # 3. same audio under another name or format
        fingerprints = [Fingerprint.decode(r.fingerprint) for r in usable]
        dropped = set()
        for index, kept, score in find_duplicates(fingerprints):
            dropped.add(index)
            summary.duplicates.append(DuplicateFile(usable[index].source, usable[kept].source,
                                                    f"same audio, similarity {score:.3f}"))
        usable = [r for i, r in enumerate(usable) if i not in dropped]
        if not usable:
            raise NoUsableAudioError(
                f"no usable audio file in {origin}: {len(inputs)} file(s) found, none usable "
                f"({len(summary.skipped)} skipped: "
                + "; ".join(f"{Path(s.path).name}: {s.reason}" for s in summary.skipped[:10])
                + (" ..." if len(summary.skipped) > 10 else "") + ")")
        if len(usable) < len(mf.SPLITS):
            raise NoUsableAudioError(
                f"only {len(usable)} usable track(s) in {origin}; at least {len(mf.SPLITS)} are needed "
                f"(one per split: {', '.join(mf.SPLITS)}). Skipped: "
                + ("; ".join(f"{Path(s.path).name}: {s.reason}" for s in summary.skipped) or "none"))

        # 4. splits and manifests
        assignment = mf.assign_splits([r.sha1 for r in usable], seed, fractions)
        texts: tp.Dict[str, str] = {}
        for split, indices in assignment.items():
            entries = [mf.ManifestEntry(path=usable[i].output, duration=usable[i].duration,
                                        sample_rate=usable[i].sample_rate, amplitude=usable[i].amplitude)
                       for i in indices]
            texts[split] = mf.manifest_text(entries)
            summary.manifests[split] = egs_dir / split / mf.MANIFEST_NAME
            summary.tracks[split] = len(entries)
            summary.hours[split] = round(sum(e.duration for e in entries) / 3600, 4)
        _check_manifests_are_ours(egs_dir, summary.manifests)
        written = [split for split in mf.SPLITS if mf.write_if_changed(summary.manifests[split], texts[split])]
        record = {
            "format": RECORD_FORMAT,
            **_settings(source_text, sample_rate, channels, seed, fractions, min_duration, root),
            "packages": summary.packages,
            "splits": {split: {"manifest": f"{split}/{mf.MANIFEST_NAME}", "tracks": summary.tracks[split],
                               "hours": summary.hours[split], "sha1": mf.text_sha1(texts[split])}
                       for split in mf.SPLITS},
            "skipped": [asdict(s) for s in summary.skipped],
            "duplicates": [asdict(d) for d in summary.duplicates],
        }
        mf.write_if_changed(egs_dir / DATASET_RECORD, json.dumps(record, indent=2) + "\n")
        summary.elapsed = time.time() - start
        logger.info("Manifests %s in %s", "written" if written else "unchanged", egs_dir)
        return summary


def _check_manifests_are_ours(egs_dir: Path, manifests: tp.Dict[str, Path]) -> None:
    """Refuses to replace manifests that this module did not write (or that were edited since)."""
    record = _read_record(egs_dir)
    known = {} if record is None else {s: v.get("sha1") for s, v in record.get("splits", {}).items()}
    for split, path in manifests.items():
        if path.exists():
            current = mf.file_sha1(path)
            if current != known.get(split):
                raise DatasetError(
                    f"{path} exists and was not written by prepare_data (or was edited since): refusing to "
                    f"overwrite it. Move it away or choose another --name.")


def _read_record(egs_dir: Path) -> tp.Optional[dict]:
    try:
        record = json.loads((egs_dir / DATASET_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None


def _summary_from_record(record: dict, name: str, egs_dir: Path) -> DatasetSummary:
    splits = record["splits"]
    return DatasetSummary(
        name=name, source=record["source"], sample_rate=record["sample_rate"], channels=record["channels"],
        seed=record["seed"], egs_dir=egs_dir, audio_root=Path(record["audio_root"]),
        manifests={s: egs_dir / splits[s]["manifest"] for s in mf.SPLITS},
        tracks={s: splits[s]["tracks"] for s in mf.SPLITS}, hours={s: splits[s]["hours"] for s in mf.SPLITS},
        skipped=[SkippedFile(**s) for s in record.get("skipped", [])],
        duplicates=[DuplicateFile(**d) for d in record.get("duplicates", [])],
        packages=record.get("packages", {}), prepared=False)


def check_dataset(source: tp.Union[str, Path], name: str, sample_rate: int, channels: int,
                  egs_root: Path = Path("egs"), audio_root: tp.Optional[Path] = None, seed: int = 0,
                  split_fractions: SplitFractions = None, min_duration: float = DEFAULT_MIN_DURATION
                  ) -> tp.Tuple[tp.Optional[DatasetSummary], str]:
    """(summary, "") when dataset `name` is prepared as requested, else (None, why not)."""
    egs_dir = Path(egs_root).expanduser().resolve() / name
    record = _read_record(egs_dir)
    if record is None:
        return None, f"no {egs_dir / DATASET_RECORD}"
    root = Path(audio_root).expanduser().resolve() if audio_root is not None else default_audio_root(name).resolve()
    wanted = _settings(_normalize_source(source), sample_rate, channels, seed,
                       mf.normalize_fractions(split_fractions), min_duration, root)
    for key, value in wanted.items():
        if record.get(key) != value:
            return None, f"{key} changed ({record.get(key)!r} -> {value!r})"
    for split in mf.SPLITS:
        info = record.get("splits", {}).get(split)
        path = egs_dir / split / mf.MANIFEST_NAME
        if info is None or mf.file_sha1(path) != info.get("sha1"):
            return None, f"{path} is missing or changed"
        for entry in mf.read_manifest(path):
            if not os.path.exists(entry["path"]):
                return None, f"{entry['path']} (listed in {path}) is missing"
    return _summary_from_record(record, name, egs_dir), ""


def ensure_dataset(source: tp.Union[str, Path], name: str, sample_rate: int, channels: int,
                   egs_root: Path = Path("egs"), audio_root: tp.Optional[Path] = None, seed: int = 0,
                   split_fractions: SplitFractions = None, min_duration: float = DEFAULT_MIN_DURATION,
                   **kwargs) -> DatasetSummary:
    """Returns at once when dataset `name` is prepared as requested; prepares it otherwise.

    Same arguments as :func:`prepare_dataset`. A relative source folder is taken relative to the
    folder the job was started from (Dora / Hydra change the working directory).
    """
    if str(source) not in RECIPES and not Path(str(source)).expanduser().is_absolute():
        try:
            from dora.git_save import to_absolute_path
            source = to_absolute_path(str(source))
        except ImportError:
            pass
    args: tp.Dict[str, tp.Any] = dict(source=source, name=name, sample_rate=sample_rate, channels=channels,
                                      egs_root=egs_root, audio_root=audio_root, seed=seed,
                                      split_fractions=split_fractions, min_duration=min_duration)
    summary, why = check_dataset(**args)
    if summary is not None:
        logger.info("Dataset '%s' is ready: %d tracks, %.2f h (%s)", name, summary.total_tracks,
                    summary.total_hours, summary.egs_dir)
        return summary
    logger.info("Preparing dataset '%s': %s", name, why)
    summary = prepare_dataset(**args, **kwargs)
    logger.info("%s", summary.format())
    return summary
