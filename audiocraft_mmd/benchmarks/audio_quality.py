"""Sanity check of the music-embedding distances on real music: do they see degradations?

Splits the clips of a manifest into two disjoint halves A and B (by track), degrades A, and
measures the Fréchet and kernel distances (musicnn embeddings) between B and each version of A.
Clean A against B is the "same music, other tracks" floor; every degradation should read farther,
and stronger ones farther still:

- ``noise_30db``, ``noise_20db``, ``noise_10db``: white Gaussian noise at that SNR (per clip);
- ``lowpass_4khz``: a 4 kHz low-pass (julius' windowed sinc);
- ``mulaw4_8khz``: a crude low-bandwidth codec: resampled to 8 kHz, 4-bit μ-law (16 levels,
  32 kbit/s), back to the original rate;
- ``buzz_100hz``: a 100 Hz pulse train at 20 dB below the clip (a decoder's buzz at a 100 Hz frame rate);
- ``opus_<kbps>``: Opus (libopus) at each ``--opus`` bitrate, nominal (default 3.2 and 6.4 kbit/s: the
  main job's codec's bitrate and twice it), when ffmpeg has libopus.

    python -m audiocraft_mmd.benchmarks.audio_quality --data egs/debian_music_16k_mono/evaluate \\
        --seconds 60 --visqol-seconds 10

``--bands-seconds`` (default 10) adds, on the first seconds of each track of A, what each degradation
does across the band (:mod:`audiocraft_mmd.metrics.codec_quality`): log-spectral distance and SNR per
band, mel distance, SI-SNR and the 100 Hz comb, against clean A. ``--visqol-seconds`` adds ViSQOL
(audio mode) and SI-SNR of each degraded A against clean A.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
from pathlib import Path
import sys
import time
import typing as tp

import torch

Clip = tp.Tuple[str, torch.Tensor, int]


def add_noise(wav: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """White Gaussian noise at ``snr_db`` below the clip's mean power."""
    power = wav.pow(2).mean()
    noise = torch.randn(wav.shape, generator=generator) * torch.sqrt(power / 10 ** (snr_db / 10))
    return wav + noise


def lowpass(wav: torch.Tensor, sample_rate: int, cutoff_hz: float) -> torch.Tensor:
    import julius
    return julius.lowpass_filter(wav, cutoff_hz / sample_rate)


def mulaw_codec(wav: torch.Tensor, sample_rate: int, bits: int = 4, codec_rate: int = 8000) -> torch.Tensor:
    """Resample to ``codec_rate``, quantise with a ``bits``-bit μ-law, resample back."""
    import julius
    mu = 2 ** bits - 1
    low = julius.resample_frac(wav, sample_rate, codec_rate).clamp(-1, 1)
    compressed = torch.sign(low) * torch.log1p(mu * low.abs()) / math.log1p(mu)
    quantised = torch.round((compressed + 1) / 2 * mu) / mu * 2 - 1
    expanded = torch.sign(quantised) * ((1 + mu) ** quantised.abs() - 1) / mu
    return julius.resample_frac(expanded, codec_rate, sample_rate)[..., :wav.shape[-1]]


def buzz(wav: torch.Tensor, sample_rate: int, rate_hz: float = 100., snr_db: float = 20.) -> torch.Tensor:
    """A pulse train at ``rate_hz``, ``snr_db`` below the clip's mean power: energy at every multiple."""
    period = int(round(sample_rate / rate_hz))
    pulses = torch.zeros_like(wav)
    pulses[..., ::period] = 1.
    pulses = pulses * torch.sqrt(wav.pow(2).mean() / pulses.pow(2).mean().clamp(min=1e-20) / 10 ** (snr_db / 10))
    return wav + pulses


def opus_degradation(wav: torch.Tensor, sample_rate: int, generator: torch.Generator, kbps: float) -> torch.Tensor:
    """The clip through Opus at ``kbps`` nominal (the generator is unused: Opus is deterministic)."""
    from ..metrics.codec_quality import opus_clips
    return opus_clips(wav[None], sample_rate, kbps)[0][0]


Degradation = tp.Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
DEGRADATIONS: tp.Dict[str, Degradation] = {
    "noise_30db": lambda wav, sr, g: add_noise(wav, 30, g),
    "noise_20db": lambda wav, sr, g: add_noise(wav, 20, g),
    "noise_10db": lambda wav, sr, g: add_noise(wav, 10, g),
    "lowpass_4khz": lambda wav, sr, g: lowpass(wav, sr, 4000),
    "mulaw4_8khz": lambda wav, sr, g: mulaw_codec(wav, sr),
    "buzz_100hz": lambda wav, sr, g: buzz(wav, sr),
}
DEFAULT_OPUS_KBPS = (3.2, 6.4)


def with_opus(kbps: tp.Sequence[float]) -> tp.Dict[str, Degradation]:
    """:data:`DEGRADATIONS` plus an ``opus_<kbps>kbps`` degradation per bitrate when ffmpeg has libopus."""
    from ..metrics.opus import OpusUnavailable, ffmpeg_binary
    degradations = dict(DEGRADATIONS)
    try:
        ffmpeg_binary()
    except OpusUnavailable as error:
        print(f"note: no Opus degradations ({error})", file=sys.stderr)
        return degradations
    for rate in kbps:
        degradations[f"opus_{rate:g}kbps"] = functools.partial(opus_degradation, kbps=rate)
    return degradations


def band_metrics(half_a: tp.Sequence[Clip], seconds: float, degradations: tp.Dict[str, Degradation] = DEGRADATIONS,
                 log: tp.Callable[[str], None] = lambda message: None) -> tp.Dict[str, tp.Dict[str, tp.Any]]:
    """What each degradation does across the band, on the first ``seconds`` of each clip of ``half_a``
    against its clean version: :func:`audiocraft_mmd.metrics.codec_quality.reconstruction_figures`
    (clips at one sample rate; the comb at 100 Hz)."""
    from ..metrics.codec_quality import reconstruction_figures
    rates = {rate for _, _, rate in half_a}
    if len(rates) != 1:
        raise ValueError(f"the clips must share a sample rate, got {sorted(rates)}")
    (rate,) = rates
    length = min(min(wav.shape[-1] for _, wav, _ in half_a), int(seconds * rate))
    clean = torch.stack([wav[..., :length] for _, wav, _ in half_a])
    results = {}
    for name, degrade in degradations.items():
        generator = torch.Generator().manual_seed(0)
        degraded = torch.stack([degrade(wav, rate, generator)[..., :length] for wav in clean])
        results[name] = reconstruction_figures(clean, degraded, rate, 100.)
        figures = results[name]
        log(f"{name:13s} LSD {' / '.join(f'{v:5.2f}' for v in figures['lsd_db'].values())}  SNR "
            f"{' / '.join(f'{v:+5.1f}' for v in figures['snr_db'].values())}  mel {figures['mel_distance']:.3f}  "
            f"SI-SNR {figures['si_snr_db']:+.2f}  comb {figures['comb_db']:+.2f}")
    return results


def read_excerpts(paths: tp.Sequence[tp.Union[str, Path]], seconds: float, offset: float = 0.0) -> tp.List[Clip]:
    """The ``seconds`` after ``offset`` of each file (files too short for that start at 0)."""
    from audiocraft.data.audio import audio_info, audio_read
    clips = []
    for path in paths:
        start = offset if audio_info(path).duration >= offset + seconds else 0.0
        wav, rate = audio_read(path, seek_time=start, duration=seconds)
        clips.append((str(path), wav, rate))
    return clips


def degradation_distances(half_a: tp.Sequence[Clip], half_b: tp.Sequence[Clip], embedder: tp.Any,
                          draws: int = 100, seed: int = 0, degradations: tp.Dict[str, Degradation] = DEGRADATIONS,
                          log: tp.Callable[[str], None] = lambda message: None) -> tp.Dict[str, tp.Dict[str, tp.Any]]:
    """Distances between ``half_b`` and ``half_a``, clean (``clean``) and under each degradation."""
    from ..metrics.embedding_distance import embedding_distances
    reference = embedder.embed_many(half_b)
    results = {}
    for name in ["clean", *degradations]:
        generator = torch.Generator().manual_seed(seed)
        clips = half_a if name == "clean" else [(clip, degradations[name](wav, rate, generator), rate)
                                               for clip, wav, rate in half_a]
        start = time.time()
        candidate = embedder.embed_many(clips)
        distances = embedding_distances(reference.embeddings, candidate.embeddings, reference.groups,
                                        candidate.groups, draws=draws, seed=seed)
        results[name] = {key: value.to_dict() for key, value in distances.items()}
        log(f"{name:13s} frechet {distances['frechet'].value:8.3f}  kernel {distances['kernel'].value:8.4f}  "
            f"({time.time() - start:.0f} s)")
    return results


def reference_metrics(half_a: tp.Sequence[Clip], seconds: float, degradations: tp.Dict[str, Degradation] = DEGRADATIONS,
                      log: tp.Callable[[str], None] = lambda message: None) -> tp.Dict[str, tp.Dict[str, float]]:
    """Full-reference metrics of each degradation of ``half_a`` against its clean version (first
    ``seconds`` of each clip): SI-SNR (dB), ViSQOL MOS-LQO (audio mode, 48 kHz), averaged over clips."""
    from audiocraft.losses import SISNR
    from ..solvers.quality_plugins import visqol_api, visqol_scores
    api, sisnr = visqol_api(), SISNR()
    results = {}
    for name, degrade in degradations.items():
        generator = torch.Generator().manual_seed(0)
        snr, mos = [], []
        for _, wav, rate in half_a:
            clean = wav[..., :int(seconds * rate)]
            degraded = degrade(clean, rate, generator)
            snr.append(-float(sisnr(degraded[None], clean[None])))
            mos += visqol_scores(api, clean[None], degraded[None], rate)
        results[name] = {"si_snr_db": sum(snr) / len(snr), "visqol_moslqo": sum(mos) / len(mos)}
        log(f"{name:13s} SI-SNR {results[name]['si_snr_db']:6.2f} dB  ViSQOL {results[name]['visqol_moslqo']:.3f}")
    return results


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audiocraft_mmd.benchmarks.audio_quality",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="manifest folder (egs/<name>/<split>) or audio folder")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per track")
    parser.add_argument("--offset", type=float, default=30.0, help="start of the excerpt in each track")
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--visqol-seconds", type=float, default=0.0,
                        help="also SI-SNR and ViSQOL of each degraded A against clean A, on this many seconds "
                             "per track")
    parser.add_argument("--bands-seconds", type=float, default=10.0,
                        help="per-band LSD and SNR, mel, SI-SNR and comb of each degradation on this many seconds "
                             "per track (0: none)")
    parser.add_argument("--opus", default=",".join(f"{rate:g}" for rate in DEFAULT_OPUS_KBPS),
                        help="kbit/s of the Opus degradations ('' for none)")
    args = parser.parse_args(argv)
    from ..data.sources import resolve_source
    from ..metrics.music_embedding import MusicEmbedder
    files = resolve_source(args.data)
    if len(files) < 4:
        print(f"error: {args.data} has {len(files)} tracks; the two halves need at least 4", file=sys.stderr)
        return 2
    degradations = with_opus([float(rate) for rate in args.opus.split(",") if rate.strip()])
    clips = read_excerpts(files, args.seconds, args.offset)
    half_a, half_b = clips[0::2], clips[1::2]
    print(f"{len(half_a)} + {len(half_b)} tracks, {args.seconds:g} s each from {args.offset:g} s", flush=True)

    def log(message: str) -> None:
        print(message, flush=True)
    results: tp.Dict[str, tp.Any] = {"distances": degradation_distances(
        half_a, half_b, MusicEmbedder(), args.bootstrap, degradations=degradations, log=log)}
    if args.bands_seconds > 0:
        results["bands"] = band_metrics(half_a, args.bands_seconds, degradations, log=log)
    if args.visqol_seconds > 0:
        results["reference_metrics"] = reference_metrics(half_a, args.visqol_seconds, degradations, log=log)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
