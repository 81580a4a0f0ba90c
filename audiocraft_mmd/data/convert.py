"""Decode, check, convert and fingerprint one audio file (runs in worker processes).

One input file becomes at most one output file, ``<audio_root>/<key>.flac`` (16-bit FLAC at the
target sample rate and number of channels), written atomically (temporary file + rename), plus a
small JSON record ``<audio_root>/.index/<key>.json`` saying what was done: the input's SHA-1, the
measured duration and level, the outcome (converted, or why the file was skipped) and the
fingerprint used to find duplicates. A later run with the same input and settings reuses the record
and the output without decoding anything, so preparing twice rewrites nothing. The input file is
only ever read.

Decoding uses soundfile (libsndfile: WAV, FLAC, Ogg Vorbis, Opus, MP3, AIFF, ...) first and the
``ffmpeg`` binary (on PATH, else the one shipped by imageio-ffmpeg) for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import json
import os
from pathlib import Path
import shutil
import subprocess
import time
import typing as tp

import numpy as np
import soundfile as sf

from .fingerprint import compute_fingerprint

RECORD_VERSION = 1
INDEX_DIR = ".index"
OUTPUT_SUFFIX = ".flac"
OUTPUT_SUBTYPE = "PCM_16"

# Extensions looked at when scanning a folder; other files (images, text...) are ignored silently.
AUDIO_EXTENSIONS = frozenset("""
    .wav .wave .flac .ogg .oga .opus .mp3 .mp2 .m4a .m4b .aac .mp4 .wma .aif .aiff .aifc .au .snd
    .caf .w64 .rf64 .mka .webm .ape .wv .mpc .ac3 .amr .spx .tta .voc .sd2 .ircam .sf .nist .xi
""".split())


class DecodeError(RuntimeError):
    pass


@dataclass
class ConversionJob:
    """Everything a worker needs to convert one file (picklable)."""
    source: str            # input file (read only)
    key: str               # relative name of the track, e.g. "ufoai-music/music/dawn.ogg"
    audio_root: str        # where the output and its record go
    sha1: str              # of the input's bytes
    size: int              # of the input, in bytes
    sample_rate: int
    channels: int
    min_duration: float
    silence_rms: float

    @property
    def output(self) -> Path:
        return Path(self.audio_root) / (self.key + OUTPUT_SUFFIX)

    @property
    def record_path(self) -> Path:
        return Path(self.audio_root) / INDEX_DIR / (self.key + ".json")


@dataclass
class TrackResult:
    """Outcome for one input file."""
    key: str
    source: str
    sha1: str
    ok: bool
    reason: str = ""                  # why the file was skipped (when not ok)
    output: str = ""                  # converted file (when ok)
    duration: float = 0.0             # seconds, of the converted audio (or the input when skipped)
    sample_rate: int = 0
    channels: int = 0
    amplitude: float = 0.0            # peak of the converted audio
    fingerprint: str = ""             # Fingerprint.encode() of the converted audio
    reused: bool = False              # True when nothing had to be decoded or written
    seconds: float = 0.0              # processing time
    details: tp.Dict[str, tp.Any] = field(default_factory=dict)


def sha1_of_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def ffmpeg_binary() -> tp.Optional[str]:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or no binary for this platform
        return None


def _decode_soundfile(path: str) -> tp.Tuple[np.ndarray, int]:
    """[frames, channels] float32 and the sample rate, at the file's own rate."""
    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    return wav, int(sr)


def _decode_ffmpeg(path: str, sample_rate: int, channels: int) -> np.ndarray:
    """[frames, channels] float32, converted by ffmpeg to the target rate and channels."""
    exe = ffmpeg_binary()
    if exe is None:
        raise DecodeError("no ffmpeg binary (install imageio-ffmpeg or ffmpeg)")
    cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", path, "-map", "0:a:0",
           "-vn", "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(sample_rate),
           "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise DecodeError(lines[-1] if lines else f"ffmpeg exited with code {proc.returncode}")
    data = np.frombuffer(proc.stdout, dtype=np.float32)
    return data[: data.size - data.size % channels].reshape(-1, channels).copy()


def _to_target(wav: np.ndarray, sr: int, sample_rate: int, channels: int) -> np.ndarray:
    """Channel conversion as in AudioCraft's `convert_audio` (mean for mono), then resampling."""
    if wav.shape[1] != channels:
        if channels == 1:
            wav = wav.mean(axis=1, keepdims=True)
        elif wav.shape[1] == 1:
            wav = np.repeat(wav, channels, axis=1)
        elif wav.shape[1] > channels:
            wav = wav[:, :channels]
        else:
            raise DecodeError(f"cannot make {channels} channels out of {wav.shape[1]}")
    if sr != sample_rate:
        import torch
        import torchaudio.functional as AF
        tensor = torch.from_numpy(np.ascontiguousarray(wav.T))
        wav = AF.resample(tensor, sr, sample_rate).T.numpy()
    return np.ascontiguousarray(wav, dtype=np.float32)


def _write_atomic_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _write_audio_atomic(path: Path, wav: np.ndarray, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        sf.write(tmp, np.clip(wav, -1.0, 1.0), sample_rate, subtype=OUTPUT_SUBTYPE, format="FLAC")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _load_record(job: ConversionJob) -> tp.Optional[dict]:
    try:
        record = json.loads(job.record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("version") != RECORD_VERSION or record.get("sha1") != job.sha1:
        return None
    return record


def _output_matches(record: dict, job: ConversionJob) -> bool:
    """The output recorded as ours is still there, unchanged, at the requested format."""
    out = record.get("output")
    if not out or record.get("sample_rate") != job.sample_rate or record.get("channels") != job.channels:
        return False
    try:
        st = job.output.stat()
    except OSError:
        return False
    return st.st_size == out.get("size") and st.st_mtime_ns == out.get("mtime_ns")


def _verdict(job: ConversionJob, duration: float, rms: float) -> str:
    """Reason to skip a decoded file with this duration and level ('' to keep it)."""
    if duration <= 0:
        return "empty (no audio samples)"
    if duration < job.min_duration:
        return f"too short ({duration:.1f} s < {job.min_duration:g} s)"
    if not rms >= job.silence_rms:
        return f"silent (RMS {20 * np.log10(max(rms, 1e-12)):.0f} dBFS)"
    return ""


def _result_from_record(job: ConversionJob, record: dict, reused: bool) -> TrackResult:
    result = TrackResult(key=job.key, source=job.source, sha1=job.sha1, ok=False, reused=reused,
                         duration=record.get("duration", 0.0))
    if record.get("error"):
        result.reason = record["error"]
        return result
    rms = record["rms"]
    result.reason = _verdict(job, record["source_duration"], 1.0 if rms is None else rms)
    if result.reason or not record.get("output"):
        result.duration = record["source_duration"]
        return result
    result.ok = True
    result.output = str(job.output)
    result.sample_rate = record["sample_rate"]
    result.channels = record["channels"]
    result.amplitude = record["amplitude"]
    result.fingerprint = record["fingerprint"]
    return result


def reuse(job: ConversionJob) -> tp.Optional[TrackResult]:
    """The result of an earlier run for this input and these settings, if nothing needs doing."""
    start = time.time()
    record = _load_record(job)
    if record is not None and not record.get("error") and record.get("rms") is None:
        # Only the length was measured (too short then): decode it if it is long enough now.
        if record["source_duration"] >= job.min_duration:
            return None
    if record is not None:
        needs_output = not record.get("error") and not _verdict(
            job, record["source_duration"], 1.0 if record["rms"] is None else record["rms"])
        if not needs_output or _output_matches(record, job):
            result = _result_from_record(job, record, reused=True)
            result.seconds = time.time() - start
            return result
    return None


def process(job: ConversionJob) -> TrackResult:
    """Converts `job.source` (or reuses an earlier conversion). Never raises for a bad input file."""
    reused = reuse(job)
    if reused is not None:
        return reused
    start = time.time()
    result = _convert(job)
    result.seconds = time.time() - start
    return result


def _convert(job: ConversionJob) -> TrackResult:
    record: tp.Dict[str, tp.Any] = {"version": RECORD_VERSION, "sha1": job.sha1, "source": job.source,
                                    "size": job.size}
    out = job.output  # inside audio_root, which holds only files written by prepare_data

    def skip(reason: str, **extra) -> TrackResult:
        record.update(extra)
        record.setdefault("source_duration", 0.0)
        record.setdefault("rms", 0.0)
        if not extra.get("measured"):
            record["error"] = reason  # depends on the input's bytes only: final
        _write_atomic_json(job.record_path, record)
        return TrackResult(key=job.key, source=job.source, sha1=job.sha1, ok=False, reason=reason,
                           duration=record["source_duration"])

    if job.size == 0:
        return skip("empty file (0 bytes)")
    # Cheap length check first: most too-short files are never decoded.
    try:
        info = sf.info(job.source)
        if info.samplerate > 0 and info.frames > 0 and info.frames / info.samplerate < job.min_duration:
            duration = info.frames / info.samplerate
            return skip(_verdict(job, duration, 1.0), source_duration=duration, rms=None,
                        measured=True)
    except Exception:
        pass
    try:
        wav, sr = _decode_soundfile(job.source)
    except Exception as sf_error:
        try:
            wav, sr = _decode_ffmpeg(job.source, job.sample_rate, job.channels), job.sample_rate
        except Exception as ff_error:
            return skip(f"unreadable (soundfile: {_short(sf_error)}; ffmpeg: {_short(ff_error)})")
    if not np.isfinite(wav).all():
        wav = np.nan_to_num(wav, nan=0.0, posinf=0.0, neginf=0.0)
    duration = wav.shape[0] / sr
    flat = wav.reshape(-1)
    rms = float(np.sqrt(np.dot(flat, flat) / flat.size)) if flat.size else 0.0
    reason = _verdict(job, duration, rms)
    if reason:
        if duration <= 0:
            return skip(reason)
        return skip(reason, source_duration=duration, rms=rms, measured=True)
    try:
        wav = _to_target(wav, sr, job.sample_rate, job.channels)
    except Exception as error:  # e.g. an odd channel layout
        return skip(f"cannot convert ({_short(error)})")
    _write_audio_atomic(out, wav, job.sample_rate)
    st = out.stat()
    fingerprint = compute_fingerprint(wav.mean(axis=1), job.sample_rate).encode()
    record.update(source_duration=duration, rms=rms, duration=wav.shape[0] / job.sample_rate,
                  sample_rate=job.sample_rate, channels=job.channels,
                  amplitude=round(float(min(1.0, np.abs(wav).max())), 6), fingerprint=fingerprint,
                  output={"path": str(out), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    _write_atomic_json(job.record_path, record)
    return _result_from_record(job, record, reused=False)


def _short(error: BaseException, limit: int = 160) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def init_worker() -> None:
    """Process-pool initialiser: one thread per worker (the pool provides the parallelism)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass

