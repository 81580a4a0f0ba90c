"""How well a codec reconstructs music across the band, with Opus at a matched bitrate as the anchor.

SI-SNR and a mel distance are carried by the bass, where music's energy is; the per-band log-spectral
distance and SNR of :mod:`.spectral` see every band, and the frame-rate comb sees a decoder's buzz.
:func:`reconstruction_figures` gathers them for one set of outputs; :func:`code_clips` and
:func:`opus_clips` make the outputs of a codec and of Opus on the same clips.

**Bitrate matching.** A codec of K codebooks of ``bins`` entries at ``frame_rate`` Hz spends
``frame_rate x K x log2(bins)`` bit/s (:func:`codec_kbps`). Opus is asked for that rate (and multiples
of it) as its nominal VBR target; what it spends is measured on the clips and reported beside it: the
Opus packets alone (``payload_kbps``, the figure to compare) and the whole Ogg file (``file_kbps``,
container overhead included). libopus does not go below about 4 kbit/s whatever it is asked.
"""

from __future__ import annotations

from pathlib import Path
import typing as tp

import torch

from . import spectral

# The mel distance of the compression solvers' default ``mel`` section, whatever the codec's own
# config says, so that every codec and Opus are measured alike.
MEL_DEFAULTS: tp.Dict[str, tp.Any] = dict(n_fft=1024, hop_length=256, win_length=1024, n_mels=64, f_min=64,
                                          f_max=None, normalized=False, floor_level=1e-5)


def band_key(band: spectral.Band) -> str:
    """``(250.0, 1000.0)`` -> ``"250_1000"``: the band's part of a metric name."""
    return f"{band[0]:g}_{band[1]:g}".replace(".", "p")


def codec_kbps(model: tp.Any) -> float:
    """The bitrate of an AudioCraft compression model at its full number of codebooks (kbit/s)."""
    import math
    return float(model.frame_rate) * int(model.num_codebooks) * math.log2(int(model.cardinality)) / 1000


def si_snr_db(reference: torch.Tensor, output: torch.Tensor) -> float:
    """Scale-invariant SNR (dB) of each whole clip ``[B, C, T]`` (channels pooled), averaged over clips."""
    ref = reference.double().flatten(1)
    out = output.double().flatten(1)
    ref = ref - ref.mean(dim=1, keepdim=True)
    out = out - out.mean(dim=1, keepdim=True)
    scale = (out * ref).sum(dim=1, keepdim=True) / ref.square().sum(dim=1, keepdim=True).clamp(min=1e-20)
    target = scale * ref
    noise = out - target
    values = 10 * torch.log10(target.square().sum(dim=1).clamp(min=1e-20) / noise.square().sum(dim=1).clamp(min=1e-20))
    return float(values.mean())


def mel_distance(reference: torch.Tensor, output: torch.Tensor, sample_rate: int) -> float:
    """AudioCraft's ``MelSpectrogramL1Loss`` with :data:`MEL_DEFAULTS`, per clip, averaged over clips."""
    from audiocraft.losses import MelSpectrogramL1Loss
    mel = MelSpectrogramL1Loss(sample_rate=sample_rate, **MEL_DEFAULTS)
    with torch.no_grad():
        values = [float(mel(out[None].float(), ref[None].float())) for out, ref in zip(output, reference)]
    return sum(values) / len(values)


def reconstruction_figures(reference: torch.Tensor, output: torch.Tensor, sample_rate: int,
                           frame_rate: float) -> tp.Dict[str, tp.Any]:
    """Every figure of ``output`` against ``reference`` (both ``[B, C, T]``): per-band LSD and SNR (dB,
    keyed ``"0-250"``...), the frame-rate comb of the output and of the reference, the mel distance and
    SI-SNR."""
    lsd = spectral.band_lsd(reference, output, sample_rate)
    snr = spectral.band_snr(reference, output, sample_rate)
    comb = spectral.frame_rate_comb(reference, output, sample_rate, frame_rate)
    return {"lsd_db": lsd.labelled(), "snr_db": snr.labelled(), "lsd_frames": lsd.frames,
            "comb_db": comb.reconstruction_db, "comb_reference_db": comb.reference_db,
            "mel_distance": mel_distance(reference, output, sample_rate), "si_snr_db": si_snr_db(reference, output)}


def code_clips(model: tp.Any, audio: torch.Tensor, batch_size: int = 8) -> tp.Tuple[torch.Tensor, torch.Tensor]:
    """The codec's reconstruction of clips ``[B, C, T]`` (at its sample rate and channels), and their codes."""
    outputs, codes = [], []
    with torch.no_grad():
        for start in range(0, audio.shape[0], batch_size):
            clips = audio[start:start + batch_size]
            batch_codes, scale = model.encode(clips)
            outputs.append(model.decode(batch_codes, scale)[..., :clips.shape[-1]])
            codes.append(batch_codes)
    return torch.cat(outputs), torch.cat(codes)


def opus_clips(audio: torch.Tensor, sample_rate: int, kbps: float) -> tp.Tuple[torch.Tensor, tp.Dict[str, tp.Any]]:
    """Each clip of ``audio`` ``[B, C, T]`` through Opus at ``kbps`` nominal (resampled to the nearest rate
    Opus takes and back when ``sample_rate`` is not one), and what it spent (module docstring).

    Raises:
        OpusUnavailable: No ffmpeg with libopus.
    """
    from audiocraft.data.audio_utils import convert_audio
    from .opus import OPUS_RATES, opus_roundtrip
    rate = sample_rate if sample_rate in OPUS_RATES else min(r for r in OPUS_RATES if r >= sample_rate)
    outputs, payload, whole = [], [], []
    for clip in audio:
        coded = opus_roundtrip(convert_audio(clip, sample_rate, rate, clip.shape[0]), rate, kbps)
        outputs.append(convert_audio(coded.audio, rate, sample_rate, clip.shape[0])[..., :clip.shape[-1]])
        payload.append(coded.payload_kbps)
        whole.append(coded.file_kbps)
    info = {"nominal_kbps": kbps, "payload_kbps": sum(payload) / len(payload), "file_kbps": sum(whole) / len(whole),
            "opus_sample_rate": rate}
    return torch.stack(outputs), info


def paired_figures(references: tp.Sequence[Path], outputs: tp.Sequence[Path],
                   frame_rate: float) -> tp.Optional[tp.Dict[str, tp.Any]]:
    """:func:`reconstruction_figures` of audio files paired by name (a codec XP's generate-stage samples
    and the references saved beside them), at the outputs' sample rate and channels, each pair cut to its
    shorter file; None unless the two lists pair one to one."""
    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio
    by_name = {path.name: path for path in references}
    if len(by_name) != len(references) or sorted(by_name) != sorted(path.name for path in outputs):
        return None
    pairs = []
    for output_path in outputs:
        output, rate = audio_read(output_path)
        reference, reference_rate = audio_read(by_name[output_path.name])
        reference = convert_audio(reference, reference_rate, rate, output.shape[0])
        length = min(output.shape[-1], reference.shape[-1])
        pairs.append((reference[..., :length], output[..., :length], rate))
    rates = {rate for _, _, rate in pairs}
    if len(rates) != 1:
        return None
    (rate,) = rates
    length = min(reference.shape[-1] for reference, _, _ in pairs)
    reference_audio = torch.stack([reference[..., :length] for reference, _, _ in pairs])
    output_audio = torch.stack([output[..., :length] for _, output, _ in pairs])
    return {"pairs": len(pairs), "seconds": length / rate,
            **reconstruction_figures(reference_audio, output_audio, rate, frame_rate)}
