"""Per-band spectral fidelity of a reconstruction against its reference (pure torch).

Three measures, each on waveforms given as a ``[B, C, T]`` tensor or a list of ``[C, T]`` / ``[T]``
clips (every channel of every clip is one signal; reference and reconstruction must have the same
shapes), at one sample rate:

- :func:`band_lsd` -- log-spectral distance per frequency band (dB, lower is better). STFT of
  ``n_fft`` points (default 512), periodic Hann window, hop ``hop_length`` (default 128), no
  padding (frames ``0, hop, 2 hop, ...`` that fit inside the clip); the spectrum is divided by the
  window's sum, so a full-scale sine reads about -6 dB. Power ``P`` in dB is ``10 log10(P + floor)``
  with ``floor`` = ``floor_db`` (default -100 dB, far below the music's content). For a frame, the
  band's LSD is the root mean square over the band's bins of the dB difference; the band's figure is
  the mean over *non-silent* frames, pooled over every signal. A frame is non-silent when its
  reference power (all bins) is above the floor and within ``silence_db`` (default 60 dB) of the
  loudest frame of its own signal.
- :func:`band_snr` -- per band, ``10 log10(sum |X|^2 / sum |X - Y|^2)`` over that band's bins of
  every frame of a signal (complex STFT difference, so phase errors count), averaged in dB over
  signals (higher is better).
- :func:`frame_rate_comb` -- a codec's buzz at its frame rate: the power spectrum averaged over
  every frame of every signal (Welch: Hann window of ``sample_rate / resolution`` points, half
  overlap; ``resolution`` defaults to a twentieth of the frame rate, 5 Hz at 100 Hz frames), in dB;
  the comb is the mean dB at the multiples of the frame rate inside a band minus the mean dB at the
  frequencies halfway between them (default band 600 Hz to 3.8 kHz: above the bass, where music's
  own partials at 100 Hz multiples are sparse). Returned for the reconstruction and for the
  reference, which shows how much of it is the music's (about 0 dB for music).

Bands (:func:`default_bands`): 0-250, 250-1000, 1000-2000, 2000-4000 Hz, then octaves up to the
Nyquist frequency (the last band stops there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
import typing as tp

import torch

Audio = tp.Union[torch.Tensor, tp.Sequence[torch.Tensor]]
Band = tp.Tuple[float, float]

FIRST_BAND_EDGES = (0.0, 250.0, 1000.0, 2000.0, 4000.0)
DEFAULT_N_FFT = 512
DEFAULT_HOP = 128
DEFAULT_FLOOR_DB = -100.0
DEFAULT_SILENCE_DB = 60.0
DEFAULT_COMB_BAND = (600.0, 3800.0)


def default_bands(sample_rate: int) -> tp.List[Band]:
    """0-250, 250-1000, 1000-2000, 2000-4000 Hz, then octaves, each clipped at Nyquist."""
    nyquist = sample_rate / 2
    edges = [edge for edge in FIRST_BAND_EDGES if edge < nyquist]
    while edges[-1] * 2 < nyquist and len(edges) >= len(FIRST_BAND_EDGES):
        edges.append(edges[-1] * 2)
    edges.append(nyquist)
    return [(float(lo), float(hi)) for lo, hi in zip(edges[:-1], edges[1:])]


@dataclass
class BandFigures:
    """One figure per band.

    Attributes:
        measure: What the values are (``lsd_db`` or ``snr_db``).
        sample_rate: Of the waveforms.
        bands: ``(low, high)`` edges in Hz; a bin at frequency f is in a band when low <= f < high
            (the last band also holds the Nyquist bin).
        values: One value per band, in dB.
        signals: Signals (clips x channels) measured.
        frames: STFT frames counted (for LSD: the non-silent ones).
    """
    measure: str
    sample_rate: int
    bands: tp.List[Band]
    values: tp.List[float]
    signals: int
    frames: int

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        data = asdict(self)
        data["bands"] = [list(band) for band in self.bands]
        return data

    def labelled(self) -> tp.Dict[str, float]:
        """``{"0-250": value, ...}``."""
        return {f"{lo:g}-{hi:g}": value for (lo, hi), value in zip(self.bands, self.values)}


@dataclass
class CombFigures:
    """The frame-rate comb: mean dB at multiples of ``frame_rate`` minus mean dB halfway between.

    Attributes:
        frame_rate: Hz.
        band: ``(low, high)`` Hz: the multiples and halfway frequencies counted lie inside it.
        resolution: Hz per bin of the averaged spectrum.
        reconstruction_db: The comb of the reconstruction.
        reference_db: The comb of the reference (the music's own share).
        multiples: Multiples of the frame rate counted.
    """
    frame_rate: float
    band: Band
    resolution: float
    reconstruction_db: float
    reference_db: float
    multiples: int

    def to_dict(self) -> tp.Dict[str, tp.Any]:
        data = asdict(self)
        data["band"] = list(self.band)
        return data


def as_signals(audio: Audio, name: str = "audio") -> tp.List[torch.Tensor]:
    """``[B, C, T]`` tensor, or clips ``[C, T]`` / ``[T]`` -> list of ``[C, T]`` float64 tensors."""
    if isinstance(audio, torch.Tensor):
        if audio.dim() != 3:
            raise ValueError(f"{name} must be [B, C, T] or a list of clips, got shape {tuple(audio.shape)}")
        clips = list(audio)
    else:
        clips = list(audio)
    out = []
    for index, clip in enumerate(clips):
        clip = torch.as_tensor(clip)
        if clip.dim() == 1:
            clip = clip[None]
        if clip.dim() != 2:
            raise ValueError(f"{name}[{index}] must be [C, T] or [T], got shape {tuple(clip.shape)}")
        out.append(clip.detach().to("cpu", torch.float64))
    if not out:
        raise ValueError(f"{name} holds no clip")
    return out


def _pairs(reference: Audio, reconstruction: Audio) -> tp.List[tp.Tuple[torch.Tensor, torch.Tensor]]:
    refs, recs = as_signals(reference, "reference"), as_signals(reconstruction, "reconstruction")
    if len(refs) != len(recs):
        raise ValueError(f"{len(refs)} reference clips but {len(recs)} reconstructions")
    for index, (ref, rec) in enumerate(zip(refs, recs)):
        if ref.shape != rec.shape:
            raise ValueError(f"clip {index}: reference {tuple(ref.shape)} and reconstruction {tuple(rec.shape)} "
                             "differ in shape (align and trim them first)")
    return list(zip(refs, recs))


def stft(signal: torch.Tensor, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> torch.Tensor:
    """``[C, T]`` -> complex ``[C, frames, n_fft // 2 + 1]``: Hann-windowed frames without padding,
    divided by the window's sum."""
    if signal.shape[-1] < n_fft:
        raise ValueError(f"a clip of {signal.shape[-1]} samples is shorter than one {n_fft}-point frame")
    window = torch.hann_window(n_fft, periodic=True, dtype=signal.dtype)
    frames = signal.unfold(-1, n_fft, hop_length) * window
    return torch.fft.rfft(frames, dim=-1) / window.sum()


def band_masks(bands: tp.Sequence[Band], n_fft: int, sample_rate: int) -> torch.Tensor:
    """``[len(bands), n_fft // 2 + 1]`` boolean: which rfft bins fall in each band."""
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    nyquist = sample_rate / 2
    masks = []
    for lo, hi in bands:
        mask = (freqs >= lo) & ((freqs < hi) | ((hi >= nyquist) & (freqs <= hi)))
        if not bool(mask.any()):
            raise ValueError(f"band {lo:g}-{hi:g} Hz holds no bin of a {n_fft}-point STFT at {sample_rate} Hz")
        masks.append(mask)
    return torch.stack(masks)


def band_lsd(reference: Audio, reconstruction: Audio, sample_rate: int,
             bands: tp.Optional[tp.Sequence[Band]] = None, n_fft: int = DEFAULT_N_FFT,
             hop_length: int = DEFAULT_HOP, floor_db: float = DEFAULT_FLOOR_DB,
             silence_db: float = DEFAULT_SILENCE_DB) -> BandFigures:
    """Log-spectral distance per band (module docstring), dB; NaN for a band when no frame counts."""
    bands = list(bands) if bands is not None else default_bands(sample_rate)
    masks = band_masks(bands, n_fft, sample_rate).double()  # [N, F]
    floor = 10 ** (floor_db / 10)
    sums = torch.zeros(len(bands), dtype=torch.float64)
    frames = 0
    signals = 0
    for ref, rec in _pairs(reference, reconstruction):
        p_ref = stft(ref, n_fft, hop_length).abs().square()  # [C, T', F]
        p_rec = stft(rec, n_fft, hop_length).abs().square()
        diff2 = (10 * torch.log10(p_ref + floor) - 10 * torch.log10(p_rec + floor)).square()
        per_band = torch.sqrt(diff2 @ masks.T / masks.sum(dim=1))  # [C, T', N]
        energy = p_ref.sum(dim=-1)  # [C, T']
        loudest = energy.max(dim=-1, keepdim=True).values
        keep = (energy > floor) & (energy >= loudest * 10 ** (-silence_db / 10))
        sums += per_band[keep].sum(dim=0)
        frames += int(keep.sum())
        signals += ref.shape[0]
    values = (sums / frames).tolist() if frames else [math.nan] * len(bands)
    return BandFigures("lsd_db", int(sample_rate), bands, values, signals, frames)


def band_snr(reference: Audio, reconstruction: Audio, sample_rate: int,
             bands: tp.Optional[tp.Sequence[Band]] = None, n_fft: int = DEFAULT_N_FFT,
             hop_length: int = DEFAULT_HOP) -> BandFigures:
    """STFT-domain SNR per band (module docstring), dB, averaged over signals."""
    bands = list(bands) if bands is not None else default_bands(sample_rate)
    masks = band_masks(bands, n_fft, sample_rate).double()
    tiny = 1e-30
    total = torch.zeros(len(bands), dtype=torch.float64)
    signals = frames = 0
    for ref, rec in _pairs(reference, reconstruction):
        x, y = stft(ref, n_fft, hop_length), stft(rec, n_fft, hop_length)
        signal_power = x.abs().square().sum(dim=1) @ masks.T  # [C, N]
        noise_power = (x - y).abs().square().sum(dim=1) @ masks.T
        total += (10 * torch.log10((signal_power + tiny) / (noise_power + tiny))).sum(dim=0)
        signals += ref.shape[0]
        frames += x.shape[0] * x.shape[1]
    return BandFigures("snr_db", int(sample_rate), bands, (total / signals).tolist(), signals, frames)


def average_power_spectrum(audio: Audio, sample_rate: int, resolution: float) -> torch.Tensor:
    """Welch power spectrum ``[n_fft // 2 + 1]`` averaged over every frame of every signal, with
    ``n_fft = round(sample_rate / resolution)``, Hann window, hop ``n_fft // 2``."""
    n_fft = int(round(sample_rate / resolution))
    total, count = None, 0
    for clip in as_signals(audio):
        power = stft(clip, n_fft, n_fft // 2).abs().square()  # [C, T', F]
        power = power.reshape(-1, power.shape[-1])
        total = power.sum(dim=0) if total is None else total + power.sum(dim=0)
        count += power.shape[0]
    assert total is not None
    return total / count


def comb_db(power: torch.Tensor, sample_rate: int, frame_rate: float,
            band: Band = DEFAULT_COMB_BAND) -> tp.Tuple[float, int]:
    """Mean dB at multiples of ``frame_rate`` in ``band`` minus mean dB halfway between, from an
    averaged power spectrum ``power`` of ``(n_fft // 2 + 1)`` bins; and the number of multiples."""
    n_fft = 2 * (power.shape[-1] - 1)
    resolution = sample_rate / n_fft
    lo, hi = band
    first, last = math.ceil(lo / frame_rate - 1e-9), math.floor(hi / frame_rate + 1e-9)
    multiples = [m * frame_rate for m in range(first, last + 1)]
    halfway = [f + frame_rate / 2 for f in multiples if f + frame_rate / 2 <= hi]
    if len(multiples) < 2 or not halfway:
        raise ValueError(f"band {lo:g}-{hi:g} Hz holds fewer than 2 multiples of {frame_rate:g} Hz")
    if frame_rate / 2 < 2 * resolution:
        raise ValueError(f"a {resolution:g} Hz resolution cannot separate multiples of {frame_rate:g} Hz "
                         "from the frequencies halfway between")
    db = 10 * torch.log10(power.double() + 1e-30)

    def at(freqs: tp.List[float]) -> float:
        index = torch.tensor([int(round(f / resolution)) for f in freqs])
        return float(db[index].mean())

    return at(multiples) - at(halfway), len(multiples)


def frame_rate_comb(reference: Audio, reconstruction: Audio, sample_rate: int, frame_rate: float,
                    band: Band = DEFAULT_COMB_BAND, resolution: tp.Optional[float] = None) -> CombFigures:
    """The frame-rate comb of the reconstruction and of the reference (module docstring)."""
    resolution = resolution or frame_rate / 20
    _pairs(reference, reconstruction)  # same clips, same shapes
    rec_db, multiples = comb_db(average_power_spectrum(reconstruction, sample_rate, resolution),
                                sample_rate, frame_rate, band)
    ref_db, _ = comb_db(average_power_spectrum(reference, sample_rate, resolution), sample_rate, frame_rate, band)
    actual = sample_rate / int(round(sample_rate / resolution))
    return CombFigures(float(frame_rate), (float(band[0]), float(band[1])), actual, rec_db, ref_db, multiples)
