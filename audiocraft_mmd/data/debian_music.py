"""The default real-music set: free game music from Debian's archive, fetched with apt.

About 10 hours, 128 tracks, free licences (see each package's ``/usr/share/doc/<pkg>/copyright``):

- ``ufoai-music``: ambient / electronic / orchestral Ogg Vorbis, inside the zip archive
  ``base/0music.pk3``;
- ``warzone2100-music``: Opus soundtracks;
- ``wesnoth-<branch>-music``: orchestral Ogg Vorbis. The branch changes between Debian releases
  (1.16 in Debian 12), so the name is looked up in the package index, never hard-coded.

A package already installed on the system is read in place (``dpkg -L``). Otherwise its ``.deb`` is
fetched with ``apt-get download`` into ``<cache>/debs/`` and unpacked with ``dpkg-deb -x`` into
``<cache>/debian/<package>_<version>/`` — neither needs root when the package index exists. As
root, a missing index is fetched once with ``apt-get update``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import contextlib
import logging
import os
from pathlib import Path
import re
import shutil
import subprocess
import typing as tp
import zipfile

from .convert import AUDIO_EXTENSIONS

logger = logging.getLogger(__name__)

RECIPE_NAME = "debian_music"
FIXED_PACKAGES = ("ufoai-music", "warzone2100-music")
WESNOTH_MUSIC = re.compile(r"^wesnoth-(\d+(?:\.\d+)*)-music$")
ARCHIVE_EXTENSIONS = (".pk3", ".zip")


class DebianUnavailableError(RuntimeError):
    """The Debian music set cannot be fetched on this system."""


@dataclass
class DebianMusic:
    files: tp.List[tp.Tuple[str, Path]] = field(default_factory=list)  # (key, path), sorted
    packages: tp.Dict[str, str] = field(default_factory=dict)          # package -> version


def _hint() -> str:
    return ("or pass a folder of your own audio instead: "
            "python -m audiocraft_mmd.prepare_data --source /path/to/music --name my_music")


def _run(cmd: tp.Sequence[str], cwd: tp.Optional[Path] = None, check: bool = True
         ) -> subprocess.CompletedProcess:
    env = dict(os.environ, LC_ALL="C", LANG="C")
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise DebianUnavailableError(f"`{' '.join(cmd)}` failed: {detail[-1] if detail else proc.returncode}")
    return proc


def _require_tools() -> None:
    missing = [tool for tool in ("apt-get", "apt-cache", "dpkg-deb", "dpkg-query") if shutil.which(tool) is None]
    if missing:
        raise DebianUnavailableError(
            f"The default dataset '{RECIPE_NAME}' is built from Debian packages, but {', '.join(missing)} "
            f"cannot be found (not a Debian-based system?). Install the packages "
            f"{', '.join(FIXED_PACKAGES)} and wesnoth-<version>-music yourself and pass their folders, "
            + _hint())


def installed_version(package: str) -> tp.Optional[str]:
    proc = _run(["dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", package], check=False)
    if proc.returncode == 0 and proc.stdout.startswith("installed "):
        return proc.stdout.split(" ", 1)[1].strip()
    return None


def candidate_version(package: str) -> tp.Optional[str]:
    proc = _run(["apt-cache", "policy", package], check=False)
    match = re.search(r"^\s*Candidate:\s*(\S+)", proc.stdout, re.MULTILINE)
    if match and match.group(1) != "(none)":
        return match.group(1)
    return None


def _branch_key(name: str) -> tp.Tuple[int, ...]:
    match = WESNOTH_MUSIC.match(name)
    return tuple(int(x) for x in match.group(1).split(".")) if match else ()


def find_wesnoth_music() -> tp.Optional[str]:
    """Name of the newest available (or installed) ``wesnoth-<branch>-music`` package."""
    names = set(_run(["apt-cache", "pkgnames", "wesnoth-"], check=False).stdout.split())
    names |= set(_run(["dpkg-query", "-W", "-f", "${Package}\n", "wesnoth-*-music"], check=False).stdout.split())
    # The 'wesnoth-music' metapackage depends on the current branch's music package.
    depends = _run(["apt-cache", "depends", "wesnoth-music"], check=False).stdout
    names |= set(re.findall(r"Depends:\s*(wesnoth-[\d.]+-music)", depends))
    usable = [n for n in names if WESNOTH_MUSIC.match(n) and (installed_version(n) or candidate_version(n))]
    return max(usable, key=_branch_key) if usable else None


def _ensure_package_index() -> None:
    """Fetches the package index once (as root) when apt knows no candidate for our packages."""
    if any(candidate_version(p) or installed_version(p) for p in FIXED_PACKAGES):
        return
    if os.geteuid() != 0:
        raise DebianUnavailableError(
            f"apt has no package index for {', '.join(FIXED_PACKAGES)}: run `sudo apt-get update` "
            f"once (then this command works without root), " + _hint())
    logger.info("No apt package index: running apt-get update (once)...")
    _run(["apt-get", "update", "-q"])
    if not any(candidate_version(p) for p in FIXED_PACKAGES):
        raise DebianUnavailableError(
            f"apt-get update did not make {', '.join(FIXED_PACKAGES)} available (is Debian 'main' in "
            f"the apt sources?), " + _hint())


def _safe_version(version: str) -> str:
    return version.replace(":", "%3a")


def _download(package: str, version: str, deb_dir: Path) -> Path:
    deb_dir.mkdir(parents=True, exist_ok=True)
    pattern = f"{package}_{_safe_version(version)}_*.deb"
    found = sorted(deb_dir.glob(pattern))
    if found:
        logger.info("Using cached %s", found[0])
        return found[0]
    logger.info("Downloading %s %s with apt-get download...", package, version)
    _run(["apt-get", "download", "-q", f"{package}={version}"], cwd=deb_dir)
    found = sorted(deb_dir.glob(pattern))
    if not found:
        raise DebianUnavailableError(f"apt-get download {package}={version} produced no {pattern} in {deb_dir}")
    return found[0]


@contextlib.contextmanager
def _building(target: Path) -> tp.Iterator[Path]:
    """Yields an empty temporary sibling of `target` that becomes `target` only once complete."""
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    yield tmp
    os.replace(tmp, target)


def _unpack(deb: Path, target: Path) -> None:
    if target.is_dir():
        return
    logger.info("Unpacking %s...", deb.name)
    with _building(target) as tmp:
        _run(["dpkg-deb", "-x", str(deb), str(tmp)])


def _extract_archive(archive: Path, target: Path) -> None:
    """Extracts the audio members of a zip archive (e.g. a game's .pk3) into `target`."""
    if target.is_dir():
        return
    logger.info("Extracting audio from %s...", archive.name)
    with _building(target) as tmp, zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            name = Path(member.filename)
            if member.is_dir() or name.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            if name.is_absolute() or ".." in name.parts:
                continue
            out = tmp / name
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def _package_audio(package: str, cache_dir: Path) -> tp.Tuple[str, tp.List[Path]]:
    """Version and audio files of `package` (installed copy, else downloaded and unpacked)."""
    version = installed_version(package)
    if version is not None:
        logger.info("Using the installed package %s %s", package, version)
        listed = _run(["dpkg-query", "-L", package]).stdout.splitlines()
        files = [Path(p) for p in listed if Path(p).is_file()]
        work = cache_dir / "debian" / f"{package}_{_safe_version(version)}_installed"
    else:
        version = candidate_version(package)
        if version is None:
            raise DebianUnavailableError(f"apt knows no package {package!r}, " + _hint())
        deb = _download(package, version, cache_dir / "debs")
        work = cache_dir / "debian" / f"{package}_{_safe_version(version)}"
        work.mkdir(parents=True, exist_ok=True)
        if _run(["dpkg-deb", "--info", str(deb)], check=False).returncode != 0:
            logger.warning("%s is damaged; downloading it again", deb)
            deb.unlink()
            deb = _download(package, version, cache_dir / "debs")
        _unpack(deb, work / "root")
        files = sorted(p for p in (work / "root").rglob("*") if p.is_file())
    audio: tp.List[Path] = []
    for path in files:
        suffix = path.suffix.lower()
        if suffix in ARCHIVE_EXTENSIONS and zipfile.is_zipfile(path):
            target = work / "archives" / path.name
            work.mkdir(parents=True, exist_ok=True)
            _extract_archive(path, target)
            audio.extend(p for p in target.rglob("*") if p.is_file())
        elif suffix in AUDIO_EXTENSIONS and "/doc/" not in path.as_posix():
            audio.append(path)
    return version, sorted(audio)


def fetch_debian_music(cache_dir: Path) -> DebianMusic:
    """Audio files of the default set, keyed ``<package>/<path below its music folder>``."""
    _require_tools()
    _ensure_package_index()
    wesnoth = find_wesnoth_music()
    packages = list(FIXED_PACKAGES)
    if wesnoth is None:
        logger.warning("No wesnoth-<version>-music package in the apt index; continuing without it")
    else:
        packages.append(wesnoth)
    result = DebianMusic()
    for package in packages:
        version, files = _package_audio(package, cache_dir)
        result.packages[package] = version
        if not files:
            logger.warning("Package %s %s holds no audio file", package, version)
            continue
        base = Path(os.path.commonpath([str(p.parent) for p in files]))
        result.files.extend((f"{package}/{p.relative_to(base).as_posix()}", p) for p in files)
        logger.info("%s %s: %d audio files", package, version, len(files))
    return result
