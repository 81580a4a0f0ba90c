"""Per-band fidelity of a codec against Opus at 1x and 2x its bitrate, on the same clips.

    ./mmd-env python scripts/codec_bands.py --checkpoint //sig/SIG \
        --data egs/debian_music_16k_mono/evaluate [--clips 60 --seconds 5] [--out FILE.json]

Run from the repository root (``//sig/`` resolves to ``outputs/xps/SIG``).

Clips: every whole ``--seconds`` piece of every track of the manifest, in manifest order; with
``--clips N`` (default 60, 0 = all), N of them evenly spaced over that list, so every track
contributes in proportion to its length (the evaluate split's 10 tracks, 49.7 min: 596 pieces of
5 s, 60 by default: 5 minutes of audio, about a minute of CPU). Each clip is converted to the codec's
sample rate and channels, coded on its own (codec and Opus alike) and compared with its input.

Figures (``audiocraft_mmd.metrics.spectral``): per-band LSD and SNR (dB), the frame-rate comb of the
output and of the reference (at the codec's frame rate), the mel distance (AudioCraft's
``MelSpectrogramL1Loss`` with the default ``mel`` config of ``config/solver/compression/default.yaml``
at the codec's sample rate, whatever the XP's own ``mel`` section says), SI-SNR (dB, per whole clip,
averaged), and for the codec the entropy of each codebook over the clips' frames. The codec's
bitrate is frame_rate x K x log2(bins); Opus runs at 1x and 2x that nominal rate
(``audiocraft_mmd.metrics.opus``), and its measured payload bitrate is reported. Opus figures are
cached in ``outputs/codec_bands/opus_*.json`` (keyed by manifest, clips, sample rate and bitrate).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import audiocraft_mmd  # noqa: E402,F401  (connects AudioCraft first)
from audiocraft_mmd.metrics import spectral  # noqa: E402
from audiocraft_mmd.metrics.usage import codebook_usage  # noqa: E402

MEL_DEFAULTS = dict(n_fft=1024, hop_length=256, win_length=1024, n_mels=64, f_min=64, f_max=None,
                    normalized=False, floor_level=1e-5)


def clip_list(data: str, seconds: float, clips: int):
    from audiocraft.data.audio_dataset import load_audio_meta
    path = Path(data)
    manifest = path / "data.jsonl" if path.is_dir() else path
    if not manifest.exists() and path.is_dir():
        manifest = path / "data.jsonl.gz"
    entries = load_audio_meta(manifest)
    pieces = [(entry, index) for entry in entries for index in range(int(entry.duration // seconds))]
    if clips and clips < len(pieces):
        chosen = np.linspace(0, len(pieces) - 1, clips).round().astype(int)
        pieces = [pieces[i] for i in chosen]
    return pieces, len(entries)


def load_clips(pieces, seconds: float, sample_rate: int, channels: int) -> torch.Tensor:
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    length = int(round(seconds * sample_rate))
    out = []
    for entry, index in pieces:
        wav, rate = audio_read(entry.path, seek_time=index * seconds, duration=seconds)
        wav = convert_audio(wav, rate, sample_rate, channels)[..., :length]
        if wav.shape[-1] < length:
            wav = torch.nn.functional.pad(wav, (0, length - wav.shape[-1]))
        out.append(wav)
    return torch.stack(out)


def common_figures(reference: torch.Tensor, output: torch.Tensor, sample_rate: int, frame_rate: float) -> dict:
    from audiocraft.losses import MelSpectrogramL1Loss
    lsd = spectral.band_lsd(reference, output, sample_rate)
    snr = spectral.band_snr(reference, output, sample_rate)
    comb = spectral.frame_rate_comb(reference, output, sample_rate, frame_rate)
    mel = MelSpectrogramL1Loss(sample_rate=sample_rate, **MEL_DEFAULTS)
    with torch.no_grad():
        mel_distance = float(np.mean([mel(o[None], r[None]).item() for o, r in zip(output, reference)]))
    return_si_snr = si_snr_db(reference, output)
    return {"lsd_db": lsd.labelled(), "snr_db": snr.labelled(), "lsd_frames": lsd.frames,
            "comb_db": comb.reconstruction_db, "comb_reference_db": comb.reference_db, "comb": comb.to_dict(),
            "mel_distance": mel_distance, "si_snr_db": return_si_snr}


def si_snr_db(reference: torch.Tensor, output: torch.Tensor) -> float:
    """Scale-invariant SNR (dB) of each whole clip (channels pooled), averaged over clips."""
    ref = reference.double().flatten(1)
    out = output.double().flatten(1)
    ref = ref - ref.mean(dim=1, keepdim=True)
    out = out - out.mean(dim=1, keepdim=True)
    proj = (out * ref).sum(dim=1, keepdim=True) / ref.square().sum(dim=1, keepdim=True).clamp(min=1e-20) * ref
    noise = out - proj
    values = 10 * torch.log10(proj.square().sum(dim=1).clamp(min=1e-20) / noise.square().sum(dim=1).clamp(min=1e-20))
    return float(values.mean())


def run_codec(model, audio: torch.Tensor, batch_size: int):
    outputs, codes = [], []
    with torch.no_grad():
        for start in range(0, audio.shape[0], batch_size):
            x = audio[start:start + batch_size]
            batch_codes, scale = model.encode(x)
            y = model.decode(batch_codes, scale)[..., :x.shape[-1]]
            outputs.append(y)
            codes.append(batch_codes)
    return torch.cat(outputs), torch.cat(codes)


def run_opus(audio: torch.Tensor, sample_rate: int, kbps: float):
    from audiocraft.data.audio_utils import convert_audio
    from audiocraft_mmd.metrics.opus import OPUS_RATES, opus_roundtrip
    rate = sample_rate if sample_rate in OPUS_RATES else min(r for r in OPUS_RATES if r >= sample_rate)
    outputs, lags, payload, file_kbps = [], [], [], []
    for clip in audio:
        x = convert_audio(clip, sample_rate, rate, clip.shape[0]) if rate != sample_rate else clip
        result = opus_roundtrip(x, rate, kbps)
        y = result.audio
        if rate != sample_rate:
            y = convert_audio(y, rate, sample_rate, clip.shape[0])[..., :clip.shape[-1]]
        outputs.append(y)
        lags.append(result.lag)
        payload.append(result.payload_kbps)
        file_kbps.append(result.file_kbps)
    info = {"nominal_kbps": kbps, "payload_kbps": float(np.mean(payload)), "file_kbps": float(np.mean(file_kbps)),
            "opus_sample_rate": rate, "lags": {str(k): int(v) for k, v in zip(*np.unique(lags, return_counts=True))}}
    return torch.stack(outputs), info


def print_row(name: str, figures: dict) -> None:
    lsd = " / ".join(f"{v:5.2f}" for v in figures["lsd_db"].values())
    snr = " / ".join(f"{v:+5.1f}" for v in figures["snr_db"].values())
    print(f"{name:<22} LSD {lsd} | SNR {snr} | mel {figures['mel_distance']:.3f} | SI-SNR "
          f"{figures['si_snr_db']:+.2f} | comb {figures['comb_db']:+.2f} (ref {figures['comb_reference_db']:+.2f})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="//sig/SIG, a checkpoint.th or an XP folder")
    parser.add_argument("--data", default="egs/debian_music_16k_mono/evaluate", help="manifest folder or file")
    parser.add_argument("--clips", type=int, default=60, help="clips, evenly spaced over the split's pieces (0: all)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per clip")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--opus", default="1,2", help="Opus bitrates as multiples of the codec's ('' for none)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="JSON file (default: outputs/codec_bands/<name>.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from audiocraft.solvers.compression import CompressionSolver

    start = time.time()
    model = CompressionSolver.model_from_checkpoint(args.checkpoint, device="cpu").eval()
    sample_rate, channels, frame_rate = int(model.sample_rate), int(model.channels), float(model.frame_rate)
    num_codebooks, bins = int(model.num_codebooks), int(model.cardinality)
    kbps = frame_rate * num_codebooks * np.log2(bins) / 1000
    pieces, tracks = clip_list(args.data, args.seconds, args.clips)
    audio = load_clips(pieces, args.seconds, sample_rate, channels)
    print(f"{args.checkpoint}: {sample_rate} Hz, {frame_rate:g} Hz frames, {num_codebooks} x {bins} codes = "
          f"{kbps:.2f} kbit/s; {len(pieces)} clips of {args.seconds:g} s from {tracks} tracks of {args.data}")

    t0 = time.time()
    output, codes = run_codec(model, audio, args.batch_size)
    codec_seconds = time.time() - t0
    usage = codebook_usage(codes, bins)
    codec = common_figures(audio, output, sample_rate, frame_rate)
    codec.update(kbps=kbps, entropy_bits=usage.entropy, entropy_fraction=[e / usage.max_entropy for e in usage.entropy],
                 usage=usage.usage, coding_seconds=codec_seconds)
    report = {"checkpoint": args.checkpoint, "data": args.data, "clips": len(pieces), "seconds": args.seconds,
              "sample_rate": sample_rate, "frame_rate": frame_rate, "num_codebooks": num_codebooks, "bins": bins,
              "kbps": kbps, "bands": [list(b) for b in spectral.default_bands(sample_rate)], "codec": codec, "opus": {}}
    print_row("codec", codec)
    print("  entropy " + " / ".join(f"{e:.2f}" for e in usage.entropy) + f" bits of {usage.max_entropy:g} "
          f"(min {min(codec['entropy_fraction']) * 100:.1f} %)")
    cache_dir = ROOT / "outputs" / "codec_bands"
    for multiple in [float(m) for m in args.opus.split(",") if m.strip()]:
        rate = kbps * multiple
        key = hashlib.sha1(json.dumps([str(Path(args.data).resolve()), len(pieces), args.seconds, args.clips,
                                       sample_rate, channels, round(rate, 4), frame_rate]).encode()).hexdigest()[:12]
        cache = cache_dir / f"opus_{key}.json"
        if cache.exists():
            figures = json.loads(cache.read_text())
        else:
            opus_out, info = run_opus(audio, sample_rate, rate)
            figures = {**common_figures(audio, opus_out, sample_rate, frame_rate), **info}
            cache_dir.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(figures, indent=1))
        report["opus"][f"{multiple:g}x"] = figures
        print_row(f"opus {multiple:g}x ({figures['payload_kbps']:.2f} kb/s)", figures)
    report["seconds_total"] = time.time() - start
    name = args.checkpoint.rstrip("/").split("/")[-1]
    out = Path(args.out) if args.out else ROOT / "outputs" / "codec_bands" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out} ({report['seconds_total']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
