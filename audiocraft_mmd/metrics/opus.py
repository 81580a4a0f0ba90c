"""An Opus round trip as a reference codec: libopus through the ``ffmpeg`` binary that the
``imageio-ffmpeg`` package ships (or ``ffmpeg`` on PATH).

:func:`opus_roundtrip` encodes a clip with libopus at a nominal bitrate (Ogg container, VBR, the
encoder's ``audio`` application unless told otherwise), decodes it with libopus at the clip's own
sample rate, and returns the decoded waveform aligned sample-exactly to the input: ffmpeg already
drops the stream's pre-skip, and the lag left (if any) is found by cross-correlation (within 2 ms
by default) and removed; the result is trimmed or zero-padded to the input's length. It also
returns the measured bitrate of the whole Ogg file and of the Opus packets alone (no Ogg pages, no
header packets), both over the input's duration.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import shutil
import subprocess
import typing as tp

import numpy as np
import torch

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


class OpusUnavailable(RuntimeError):
    """No ffmpeg binary with the libopus encoder and decoder."""


@functools.lru_cache(maxsize=None)
def ffmpeg_binary() -> str:
    """The ffmpeg binary of ``imageio-ffmpeg``, else ``ffmpeg`` on PATH, checked for libopus.

    Raises:
        OpusUnavailable: Naming what was missing.
    """
    try:
        import imageio_ffmpeg
        binary = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or no binary for this platform
        binary = shutil.which("ffmpeg")
    if binary is None:
        raise OpusUnavailable("no ffmpeg binary: install imageio-ffmpeg or put ffmpeg on PATH")
    for kind in ("encoders", "decoders"):
        listing = subprocess.run([binary, "-hide_banner", f"-{kind}"], capture_output=True, text=True).stdout
        if not any(line.split()[1:2] == ["libopus"] for line in listing.splitlines() if line.strip()):
            raise OpusUnavailable(f"{binary} has no libopus in its {kind}")
    return binary


@dataclass
class OpusRoundTrip:
    """One clip through Opus.

    Attributes:
        audio: ``[C, T]`` decoded waveform, aligned to the input and of its length.
        nominal_kbps: The bitrate asked of the encoder.
        file_kbps: Size of the whole Ogg file over the input's duration.
        payload_kbps: Size of the Opus audio packets alone over the input's duration.
        lag: Samples the decoded stream lagged the input by (removed); 0 when ffmpeg aligned it.
        correlation: Normalised cross-correlation of input and output at the chosen lag.
    """
    audio: torch.Tensor
    nominal_kbps: float
    file_kbps: float
    payload_kbps: float
    lag: int
    correlation: float


def ogg_packet_sizes(data: bytes) -> tp.List[int]:
    """Sizes in bytes of the packets of a single-stream Ogg file, in order (header packets included)."""
    sizes: tp.List[int] = []
    current = 0
    offset = 0
    while offset < len(data):
        if data[offset:offset + 4] != b"OggS":
            raise ValueError(f"no Ogg page at byte {offset}")
        segments = data[offset + 26]
        lacing = data[offset + 27:offset + 27 + segments]
        for value in lacing:
            current += value
            if value < 255:
                sizes.append(current)
                current = 0
        offset += 27 + segments + sum(lacing)
    if current:
        sizes.append(current)  # an unterminated last packet
    return sizes


def opus_payload_bytes(data: bytes) -> int:
    """Bytes of the Opus audio packets of an Ogg Opus file: all packets but OpusHead and OpusTags."""
    return sum(ogg_packet_sizes(data)[2:])


def find_lag(reference: np.ndarray, candidate: np.ndarray, max_lag: int) -> tp.Tuple[int, float]:
    """Lag (samples) by which ``candidate`` [C, T2] trails ``reference`` [C, T], in
    ``[-max_lag, max_lag]``, maximising their cross-correlation summed over channels; and the
    normalised correlation there."""
    length = reference.shape[-1] + candidate.shape[-1]
    size = 1 << (length - 1).bit_length()
    spectrum = (np.conj(np.fft.rfft(reference, size)) * np.fft.rfft(candidate, size)).sum(axis=0)
    xcorr = np.fft.irfft(spectrum, size)  # xcorr[k] = sum_t ref[t] cand[t + k]
    lags = np.arange(-max_lag, max_lag + 1)
    values = xcorr[lags % size]
    best = int(lags[int(np.argmax(values))])
    norm = np.sqrt((reference ** 2).sum() * (candidate ** 2).sum()) + 1e-30
    return best, float(values.max() / norm)


def shift(candidate: np.ndarray, lag: int, length: int) -> np.ndarray:
    """``candidate[:, t + lag]`` for t in [0, length), zero outside."""
    out = np.zeros((candidate.shape[0], length), dtype=candidate.dtype)
    start = max(0, -lag)
    stop = min(length, candidate.shape[-1] - lag)
    if stop > start:
        out[:, start:stop] = candidate[:, start + lag:stop + lag]
    return out


def opus_roundtrip(audio: torch.Tensor, sample_rate: int, kbps: float, application: str = "audio",
                   vbr: str = "on", max_lag: tp.Optional[int] = None) -> OpusRoundTrip:
    """Encodes ``audio`` ([C, T] or [T], float in [-1, 1]) with libopus at ``kbps`` nominal, decodes
    it, and aligns it to the input (module docstring). The lag is searched within ``max_lag``
    samples (default: 2 ms): ffmpeg already removes the pre-skip, so only a residual lag is
    expected, and a wider search can lock onto a period of the music at low bitrates, where the
    waveform is only loosely kept.

    Raises:
        OpusUnavailable: No ffmpeg with libopus.
        ValueError: A sample rate Opus does not take, or a failed encode/decode (ffmpeg's message).
    """
    if sample_rate not in OPUS_RATES:
        raise ValueError(f"Opus takes {OPUS_RATES} Hz, not {sample_rate} (resample first)")
    wav = torch.as_tensor(audio).detach().cpu().float()
    if wav.dim() == 1:
        wav = wav[None]
    channels, length = wav.shape
    binary = ffmpeg_binary()
    raw = np.ascontiguousarray(wav.numpy().T).astype("<f4").tobytes()  # interleaved
    pcm = ["-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels)]
    encode = [binary, "-hide_banner", "-loglevel", "error", *pcm, "-i", "pipe:0", "-c:a", "libopus",
              "-b:a", str(int(round(kbps * 1000))), "-vbr", vbr, "-application", application, "-f", "ogg", "pipe:1"]
    done = subprocess.run(encode, input=raw, capture_output=True)
    if done.returncode:
        raise ValueError(f"Opus encoding failed: {done.stderr.decode(errors='replace').strip()}")
    ogg = done.stdout
    decode = [binary, "-hide_banner", "-loglevel", "error", "-c:a", "libopus", "-f", "ogg", "-i", "pipe:0",
              *pcm, "pipe:1"]
    done = subprocess.run(decode, input=ogg, capture_output=True)
    if done.returncode:
        raise ValueError(f"Opus decoding failed: {done.stderr.decode(errors='replace').strip()}")
    decoded = np.frombuffer(done.stdout, dtype="<f4").reshape(-1, channels).T.astype(np.float64)
    reference = wav.numpy().astype(np.float64)
    max_lag = sample_rate // 500 if max_lag is None else int(max_lag)
    lag, _ = find_lag(reference, decoded, max_lag)
    aligned = shift(decoded, lag, length)
    _, correlation = find_lag(reference, aligned, 0)
    seconds = length / sample_rate
    return OpusRoundTrip(audio=torch.from_numpy(aligned).float(), nominal_kbps=float(kbps),
                         file_kbps=8 * len(ogg) / seconds / 1000,
                         payload_kbps=8 * opus_payload_bytes(ogg) / seconds / 1000,
                         lag=lag, correlation=correlation)
