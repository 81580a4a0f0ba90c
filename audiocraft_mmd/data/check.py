"""Start-up checks of the manifests a run trains on.

AudioCraft opens audio files inside data-loader workers: a missing, empty or corrupt file surfaces
there as an unrelated traceback (or an ``assert len(self.meta)``) long after start-up. These checks
run before the solver is built and stop the run with a :class:`DataError` naming the split and
every bad file. ``python -m audiocraft_mmd.prepare_data`` builds manifests that pass them (it skips
such files and lists them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
from pathlib import Path
import typing as tp

from ..errors import ConfigError, DataError
from .manifest import read_manifest

logger = logging.getLogger(__name__)

MAX_LISTED = 10  # bad files named in an error message; the count is always given


def manifest_path(path: tp.Union[str, Path]) -> Path:
    """The manifest file of a ``datasource.<split>`` value: the file itself, or ``data.jsonl[.gz]`` in a folder."""
    path = Path(path)
    if path.is_dir():
        for name in ("data.jsonl", "data.jsonl.gz"):
            if (path / name).exists():
                return path / name
    return path


@dataclass
class SplitCheck:
    """What :func:`check_split` found in one split's manifest.

    Attributes:
        split: The split name (``train``, ``valid``, ...).
        manifest: The manifest file.
        num_files: Number of entries.
        problems: ``(path, problem)`` for every unusable file.
        too_short: Paths shorter than the shortest segment AudioCraft accepts (it skips them).
    """
    split: str
    manifest: Path
    num_files: int = 0
    problems: tp.List[tp.Tuple[str, str]] = field(default_factory=list)
    too_short: tp.List[str] = field(default_factory=list)


def _file_problem(entry: dict, read_header: bool) -> tp.Optional[str]:
    path = Path(entry["path"])
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    if entry.get("amplitude") == 0:
        return "silent (amplitude 0 in the manifest)"
    if read_header:
        from audiocraft.data.audio import audio_info
        try:
            info = audio_info(path)
        except Exception as error:  # any decoder error means the workers would fail on it
            return f"unreadable ({type(error).__name__}: {error})"
        if not info.duration or info.duration <= 0:
            return "no audio (duration 0)"
    return None


def check_split(split: str, path: tp.Union[str, Path], min_duration: float = 0.0,
                read_headers: bool = True) -> SplitCheck:
    """Checks one split's manifest and its files.

    Args:
        split: Split name, for messages.
        path: The ``datasource.<split>`` value (a manifest file or a folder holding ``data.jsonl``).
        min_duration: Files shorter than this are reported in ``too_short`` (AudioCraft skips them).
        read_headers: Also open every file's header (catches corrupt files; about a millisecond each).

    Returns:
        The :class:`SplitCheck`.

    Raises:
        DataError: The manifest is missing, malformed or empty, lists unusable files, or every file
            is shorter than ``min_duration``.
    """
    manifest = manifest_path(path)
    if not manifest.is_file():
        raise DataError(f"datasource.{split}={path}: no manifest there (expected a data.jsonl file, or a folder "
                        "holding one). Build one with `python -m audiocraft_mmd.prepare_data --source <folder> "
                        "--name <name>`.")
    try:
        entries = read_manifest(manifest)
    except ValueError as error:
        raise DataError(f"datasource.{split}: {error}.") from None
    check = SplitCheck(split, manifest, num_files=len(entries))
    if not entries:
        raise DataError(f"datasource.{split}: the manifest {manifest} lists no audio file.")
    for entry in entries:
        problem = _file_problem(entry, read_headers)
        if problem is not None:
            check.problems.append((entry["path"], problem))
        elif float(entry["duration"]) < min_duration:
            check.too_short.append(entry["path"])
    if check.problems:
        listed = "\n".join(f"  {p}: {what}" for p, what in check.problems[:MAX_LISTED])
        more = f"\n  ... and {len(check.problems) - MAX_LISTED} more" if len(check.problems) > MAX_LISTED else ""
        raise DataError(f"datasource.{split}: {len(check.problems)} of the {len(entries)} files of {manifest} "
                        f"are unusable:\n{listed}{more}\nRemove them from the manifest, or rebuild it with "
                        "`python -m audiocraft_mmd.prepare_data`, which skips such files.")
    if len(check.too_short) == len(entries):
        raise DataError(f"datasource.{split}: every file of {manifest} is shorter than {min_duration:g} s, the "
                        "shortest segment AudioCraft accepts (dataset.segment_duration x dataset.min_segment_ratio).")
    if check.too_short:
        logger.warning("datasource.%s: %d of %d files are shorter than %g s and will be skipped, e.g. %s",
                       split, len(check.too_short), len(entries), min_duration, check.too_short[0])
    return check


def check_datasource(cfg: tp.Any) -> tp.Dict[str, SplitCheck]:
    """Checks the model's sample rate and channels against the data, then every split a run will load
    (all of ``datasource``, or only ``execute_only``'s)."""
    for key in ("sample_rate", "channels"):
        limit = cfg.datasource.get(f"max_{key}")
        if limit is not None and cfg[key] > limit:
            raise ConfigError(f"{key}={cfg[key]} is above datasource.max_{key}={limit}: the data was prepared "
                              f"for at most {limit}; prepare it again (prepare_data.{key}) or lower {key}.")
    if not cfg.get("check_data", True):
        return {}
    checks = {}
    for split, path in cfg.datasource.items():
        if not isinstance(path, str) or (cfg.get("execute_only") and split != cfg.execute_only):
            continue
        split_cfg = cfg.dataset.get(split) or {}
        segment = split_cfg.get("segment_duration") or cfg.dataset.get("segment_duration") or 0.0
        ratio = split_cfg.get("min_segment_ratio") or cfg.dataset.get("min_segment_ratio") or 0.0
        checks[split] = check_split(split, path, min_duration=segment * ratio)
    return checks
