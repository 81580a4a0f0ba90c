"""The study's stored measurements: one JSON file per XP, from which the reports are rebuilt without the XPs.

A codec's file (:class:`CodecMeasurement`) holds its overrides, its last evaluate stage's metrics, the
dependence command's reports on it (keyed by the folder the command caches them in: ``study_dependence``
for the whole evaluate split, ``study_lagged`` for the lagged MI, ``study_dependence_<dataset>`` for
other music), its XP-minutes and, when it evaluated more than once, its learning curve. An LM's file
(:class:`LMMeasurement`) holds its codec's signature, pattern, seed and extra overrides, its last
validation cross-entropy, the generation figures when it generated, and its XP-minutes. Each file says
which command, commit and date made it (:class:`Provenance`); a file is rewritten only when its figures
change, so the dates stay those of the measurements.

:class:`MeasurementStore` is the folder of files (default ``docs/research/measurements``). It finds a
codec by its overrides and an LM by :class:`LMKey`, so the reports built from it need neither the XPs
nor Dora's signatures.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
import subprocess
import typing as tp

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FOLDER = REPO / "docs" / "research" / "measurements"
CODE = ("audiocraft_mmd", "config", "grids")  # what the measurements depend on, for their provenance


def shown_path(path: tp.Union[str, Path]) -> str:
    """``path`` as a report shows it: relative to the repository when inside it (no machine paths)."""
    absolute = Path(path).resolve()
    return str(absolute.relative_to(REPO)) if absolute.is_relative_to(REPO) else str(path)


class MeasurementError(ValueError):
    """A stored measurement is malformed, or lacks a figure a report needs."""


@dataclasses.dataclass(frozen=True)
class Provenance:
    """What made a stored measurement: the command line, the git commit and the UTC time."""
    command: str
    commit: str
    date: str

    @classmethod
    def current(cls, command: str) -> "Provenance":
        """This run's: the checkout's commit, ``-dirty`` after it when the code differs from it (the package,
        its configs and grids; the docs the study writes do not count)."""
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        try:
            commit = git("rev-parse", "HEAD")
            if git("status", "--porcelain", "--untracked-files=no", "--", *CODE):
                commit += "-dirty"
        except (OSError, subprocess.CalledProcessError):
            commit = "unknown"
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        return cls(command=command, commit=commit, date=now.isoformat())

    @property
    def day(self) -> str:
        return self.date[:10]


@dataclasses.dataclass(frozen=True)
class LMKey:
    """What an LM is in the study's terms: the codec it models, its pattern, seed and the overrides its grid
    adds (a probe's, or an LM variant's). Two keys may name one XP (overrides equal to the defaults)."""
    codec_sig: str
    pattern: str
    seed: int
    extra: tp.Tuple[str, ...] = ()


@dataclasses.dataclass
class CodecMeasurement:
    """A finished codec's figures (see the module docstring)."""
    sig: str
    overrides: tp.Dict[str, tp.Any]
    evaluate: tp.Dict[str, tp.Any]
    minutes: float
    provenance: Provenance
    dependence: tp.Dict[str, tp.Dict[str, tp.Any]] = dataclasses.field(default_factory=dict)
    # The learning curve, when the XP evaluated more than once: per evaluation, its epoch, the XP-minutes
    # spent up to it and the evaluate metrics.
    curve: tp.List[tp.Dict[str, tp.Any]] = dataclasses.field(default_factory=list)
    kind: str = "codec"


@dataclasses.dataclass
class LMMeasurement:
    """A finished LM's figures, under every set of extra overrides it was asked for (``extras``):
    ``validation`` (``valid_ce``, ``valid_ce_per_codebook``) and, when it generated,
    ``generation`` (:class:`audiocraft_mmd.metrics.lm_measures.Cell` as a dict)."""
    sig: str
    codec_sig: str
    pattern: str
    seed: int
    extras: tp.List[tp.List[str]]
    overrides: tp.List[str]
    validation: tp.Dict[str, tp.Any]
    minutes: float
    provenance: Provenance
    generation: tp.Optional[tp.Dict[str, tp.Any]] = None
    kind: str = "lm"

    def matches(self, key: LMKey) -> bool:
        return ((self.codec_sig, self.pattern, self.seed) == (key.codec_sig, key.pattern, key.seed)
                and list(key.extra) in self.extras)


Measurement = tp.Union[CodecMeasurement, LMMeasurement]
KINDS: tp.Dict[str, tp.Type[tp.Any]] = {"codec": CodecMeasurement, "lm": LMMeasurement}


def plain(value: tp.Any) -> tp.Any:
    """``value`` as JSON gives it back (tuples become lists), so stored and computed overrides compare equal."""
    return json.loads(json.dumps(value))


def overrides_key(overrides: tp.Mapping[str, tp.Any]) -> str:
    return json.dumps(plain(dict(overrides)), sort_keys=True)


def to_json(record: Measurement) -> str:
    """The file's text. NaN is written as ``NaN`` (Python's JSON reads it back): a figure may be undefined."""
    return json.dumps(dataclasses.asdict(record), indent=2) + "\n"


def from_json(text: str, path: Path) -> Measurement:
    """The record of one file; :class:`MeasurementError` naming ``path`` when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MeasurementError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        raise MeasurementError(f"{path}: no 'kind' of {sorted(KINDS)}")
    cls = KINDS[data["kind"]]
    fields = {field.name: field for field in dataclasses.fields(cls)}
    required = [name for name, field in fields.items() if field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise MeasurementError(f"{path}: a {data['kind']} measurement without {', '.join(map(repr, missing))}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise MeasurementError(f"{path}: unknown keys {', '.join(map(repr, unknown))}")
    provenance = data["provenance"]
    if not isinstance(provenance, dict) or set(provenance) != {"command", "commit", "date"}:
        raise MeasurementError(f"{path}: 'provenance' must have exactly 'command', 'commit' and 'date'")
    for name, kinds in FIELD_TYPES.items():
        if name in data and not isinstance(data[name], kinds):
            raise MeasurementError(f"{path}: {name!r} is a {type(data[name]).__name__}, not a "
                                   f"{' or '.join(kind.__name__ for kind in kinds)}")
    for name, figures in figures_read(data).items():
        lacking = [key for key in figures if not isinstance(data[name], dict) or key not in data[name]]
        if lacking:
            raise MeasurementError(f"{path}: {name} without {', '.join(map(repr, lacking))}")
    if data["kind"] == "codec":
        check_dependence(path, data.get("dependence", {}))
    return cls(**{**data, "provenance": Provenance(**provenance)})


# The types of the records' fields in their files (JSON's: numbers may be int or float).
FIELD_TYPES: tp.Dict[str, tp.Tuple[type, ...]] = {
    "sig": (str,), "codec_sig": (str,), "pattern": (str,), "seed": (int,), "extras": (list,), "overrides": (dict, list),
    "evaluate": (dict,), "validation": (dict,), "dependence": (dict,), "minutes": (int, float),
    "generation": (dict, type(None)), "curve": (list,),
}
# The figures the reports read in each part of a record: a file without one is named when it is read, not
# met as a KeyError halfway through a report.
VALIDATION_FIGURES = ("valid_ce", "valid_ce_per_codebook")
GENERATION_FIGURES = (*VALIDATION_FIGURES, "steps_per_second", "gen_seconds", "rtf")
DEPENDENCE_FIGURES = {"study_dependence": ("usage", "alignments", "fast_slow"),
                      "study_lagged": ("lagged", "frame_rate")}
OTHER_DEPENDENCE_FIGURES = ("usage", "fast_slow")  # on other data: the independence tables' fast/slow split


def figures_read(data: tp.Dict[str, tp.Any]) -> tp.Dict[str, tp.Sequence[str]]:
    """``part -> the figures the reports read there`` for a record's data (parts named as in its error)."""
    if data["kind"] == "lm":
        return {"validation": VALIDATION_FIGURES,
                **({"generation": GENERATION_FIGURES} if data.get("generation") is not None else {})}
    return {}


def check_dependence(path: Path, dependence: tp.Dict[str, tp.Any]) -> None:
    """:class:`MeasurementError` naming ``path`` when a dependence report lacks a figure the reports read."""
    for folder, report in dependence.items():
        needed = DEPENDENCE_FIGURES.get(folder, OTHER_DEPENDENCE_FIGURES)
        lacking = [key for key in needed if not isinstance(report, dict) or key not in report]
        if lacking:
            raise MeasurementError(f"{path}: dependence measurement {folder!r} without {', '.join(map(repr, lacking))}")


def figures_of(record: Measurement) -> str:
    """The record without its provenance, as text (NaN equals NaN there): what decides whether a stored file
    is out of date."""
    figures = dataclasses.asdict(record)
    figures.pop("provenance")
    return json.dumps(figures, sort_keys=True)


class MeasurementSource(tp.Protocol):
    """Where the reports take their figures from: :class:`MeasurementStore` (the stored files alone) or
    :class:`audiocraft_mmd.study.xp_measurements.XPMeasurements` (the XPs, measured and stored)."""

    def codec(self, overrides: tp.Mapping[str, tp.Any]) -> tp.Optional[CodecMeasurement]:
        """The finished codec trained with ``overrides`` (None when unfinished or unknown)."""

    def dependence(self, codec: CodecMeasurement, folder: str, data: tp.Optional[str], segment: float,
                   options: tp.Sequence[str] = ()) -> tp.Dict[str, tp.Any]:
        """The dependence command's report ``folder`` on ``codec`` (``data``: default its evaluate split)."""

    def has_dependence(self, folder: str, data: str) -> bool:
        """Whether the codecs can be measured on ``data`` (cached in ``folder``)."""

    def codec_sig(self, overrides: tp.Mapping[str, tp.Any]) -> tp.Optional[str]:
        """The signature of the codec with ``overrides`` (None when unknown)."""

    def lm(self, key: LMKey, argv: tp.Callable[[], tp.List[str]]) -> tp.Optional[LMMeasurement]:
        """The finished LM ``key`` (None when unfinished or unknown); ``argv``: its overrides, for its XP."""

    def generation(self, lm: LMMeasurement, what: str) -> tp.Dict[str, tp.Any]:
        """The LM's generation figures (``what``: the LM, for messages)."""


class MeasurementStore:
    """The folder of stored measurements: reads every ``*.json`` in it, finds records, writes new ones.

    It also serves the reports as their source of figures (the same methods as
    :class:`audiocraft_mmd.study.xp_measurements.XPMeasurements`, which measures the XPs instead),
    and remembers the dates of the records it served (:meth:`latest_day`)."""

    def __init__(self, folder: Path = DEFAULT_FOLDER):
        self.folder = Path(folder)
        self._records: tp.Optional[tp.Dict[str, Measurement]] = None
        self._served: tp.Set[str] = set()

    def path(self, sig: str) -> Path:
        return self.folder / f"{sig}.json"

    def records(self) -> tp.Dict[str, Measurement]:
        """Every stored record by signature (read once)."""
        if self._records is None:
            self._records = {}
            for path in sorted(self.folder.glob("*.json")):
                record = from_json(path.read_text(), path)
                if record.sig != path.stem:
                    raise MeasurementError(f"{path}: holds XP {record.sig}, not {path.stem}")
                self._records[record.sig] = record
        return self._records

    def save(self, record: Measurement) -> Measurement:
        """Stores ``record``, unless the stored file has the same figures (then that one, with its provenance,
        is kept and returned)."""
        stored = self.records().get(record.sig)
        if stored is not None and figures_of(stored) == figures_of(record):
            return stored
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path(record.sig).write_text(to_json(record))
        self.records()[record.sig] = record
        return record

    def _serve(self, record: tp.Optional[Measurement]) -> tp.Any:
        if record is not None:
            self._served.add(record.provenance.day)
        return record

    def latest_day(self) -> str:
        """The date of the latest record served so far ("" before any)."""
        return max(self._served, default="")

    # The reports' source of figures.

    def codec(self, overrides: tp.Mapping[str, tp.Any]) -> tp.Optional[CodecMeasurement]:
        """The finished codec trained with ``overrides`` (None when none is stored)."""
        key = overrides_key(overrides)
        found = [r for r in self.records().values() if isinstance(r, CodecMeasurement)
                 and overrides_key(r.overrides) == key]
        return self._serve(found[0] if found else None)

    def dependence(self, codec: CodecMeasurement, folder: str, data: tp.Optional[str], segment: float,
                   options: tp.Sequence[str] = ()) -> tp.Dict[str, tp.Any]:
        """The dependence report ``folder`` of ``codec``; :class:`MeasurementError` naming the file when absent."""
        if folder not in codec.dependence:
            raise MeasurementError(f"{self.path(codec.sig)}: no dependence measurement {folder!r} (it has "
                                   f"{sorted(codec.dependence) or 'none'}); measure it where the XP is, with "
                                   "`python -m audiocraft_mmd.study report`")
        return codec.dependence[folder]

    def has_dependence(self, folder: str, data: str) -> bool:
        """Whether any stored codec was measured in ``folder`` (the stored answer to "is there such data")."""
        return any(isinstance(r, CodecMeasurement) and folder in r.dependence for r in self.records().values())

    def codec_sig(self, overrides: tp.Mapping[str, tp.Any]) -> tp.Optional[str]:
        """The signature of the stored codec with ``overrides`` (None when none is stored)."""
        record = self.codec(overrides)
        return None if record is None else record.sig

    def lm(self, key: LMKey, argv: tp.Callable[[], tp.List[str]]) -> tp.Optional[LMMeasurement]:
        """The finished LM ``key`` (None when none is stored); ``argv`` is for the XPs' source only."""
        found = [r for r in self.records().values() if isinstance(r, LMMeasurement) and r.matches(key)]
        return self._serve(found[0] if found else None)

    def generation(self, lm: LMMeasurement, what: str) -> tp.Dict[str, tp.Any]:
        """The LM's generation figures; :class:`MeasurementError` naming the file when it never generated."""
        if lm.generation is None:
            raise MeasurementError(f"{self.path(lm.sig)}: no generation figures for the LM ({what}); measure them "
                                   "where the XP is, with `python -m audiocraft_mmd.study report`")
        return lm.generation
