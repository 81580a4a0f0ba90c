"""Per-band spectral fidelity (audiocraft_mmd.metrics.spectral) and the Opus round trip
(audiocraft_mmd.metrics.opus): each measure sees what it should, and matches a slow reference."""

import math

import numpy as np
import pytest
import torch

from common_utils import unavailable

from audiocraft_mmd.metrics import opus, spectral

SR = 8000


def music_like(seconds: float = 2.0, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    """Non-periodic broadband test signal: inharmonic partials over the whole band, a chirp, noise,
    a slow envelope; peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
            for f in rng.uniform(40, 0.45 * sample_rate, size=24))
    x = x + 0.5 * np.sin(2 * np.pi * (60 * t + 200 * t ** 2))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.7 * t)) + 0.3 * rng.standard_normal(t.size)
    return 0.5 * x / np.abs(x).max()


def lowpass(x: np.ndarray, cutoff: float, sample_rate: int = SR) -> np.ndarray:
    spectrum = np.fft.rfft(x)
    spectrum[np.fft.rfftfreq(x.size, 1 / sample_rate) > cutoff] = 0
    return np.fft.irfft(spectrum, x.size)


def as_batch(*signals: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.stack(signals))[:, None].float()


# Slow references: one frame at a time, numpy.

def slow_frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    spectra = []
    start = 0
    while start + n_fft <= x.size:
        spectra.append(np.fft.rfft(x[start:start + n_fft] * window) / window.sum())
        start += hop
    return np.array(spectra)


def slow_lsd(refs, recs, sample_rate, bands, n_fft=512, hop=128, floor_db=-100., silence_db=60.):
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    floor = 10 ** (floor_db / 10)
    per_band = [[] for _ in bands]
    for ref, rec in zip(refs, recs):
        pr, pc = np.abs(slow_frames(ref, n_fft, hop)) ** 2, np.abs(slow_frames(rec, n_fft, hop)) ** 2
        energies = pr.sum(axis=1)
        for frame in range(pr.shape[0]):
            if energies[frame] <= floor or energies[frame] < energies.max() * 10 ** (-silence_db / 10):
                continue
            for b, (lo, hi) in enumerate(bands):
                sel = (freqs >= lo) & ((freqs < hi) | ((hi >= sample_rate / 2) & (freqs <= hi)))
                d = 10 * np.log10(pr[frame, sel] + floor) - 10 * np.log10(pc[frame, sel] + floor)
                per_band[b].append(math.sqrt(np.mean(d ** 2)))
    return [float(np.mean(v)) for v in per_band]


def slow_snr(refs, recs, sample_rate, bands, n_fft=512, hop=128):
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    out = np.zeros(len(bands))
    for ref, rec in zip(refs, recs):
        x, y = slow_frames(ref, n_fft, hop), slow_frames(rec, n_fft, hop)
        for b, (lo, hi) in enumerate(bands):
            sel = (freqs >= lo) & ((freqs < hi) | ((hi >= sample_rate / 2) & (freqs <= hi)))
            out[b] += 10 * np.log10((np.abs(x[:, sel]) ** 2).sum() / (np.abs(x[:, sel] - y[:, sel]) ** 2).sum())
    return list(out / len(refs))


def test_default_bands():
    assert spectral.default_bands(8000) == [(0, 250), (250, 1000), (1000, 2000), (2000, 4000)]
    assert spectral.default_bands(16000)[-1] == (4000, 8000)
    assert spectral.default_bands(24000)[-2:] == [(4000, 8000), (8000, 12000)]
    assert spectral.default_bands(44100)[-1] == (16000, 22050)
    assert spectral.default_bands(6000) == [(0, 250), (250, 1000), (1000, 2000), (2000, 3000)]


def test_lsd_and_snr_match_a_per_frame_loop():
    rng = np.random.default_rng(3)
    # Clips of different lengths, one with a silent stretch (left out of the LSD), as a list.
    refs = [music_like(1.3, seed=1), music_like(0.9, seed=2)]
    refs[1][:3000] = 0.0
    recs = [r + 0.05 * rng.standard_normal(r.size) for r in refs]
    recs[0] = lowpass(recs[0], 1500)
    bands = spectral.default_bands(SR)
    lsd = spectral.band_lsd([torch.tensor(r) for r in refs], [torch.tensor(r) for r in recs], SR)
    snr = spectral.band_snr([torch.tensor(r) for r in refs], [torch.tensor(r) for r in recs], SR)
    np.testing.assert_allclose(lsd.values, slow_lsd(refs, recs, SR, bands), rtol=1e-9)
    np.testing.assert_allclose(snr.values, slow_snr(refs, recs, SR, bands), rtol=1e-9)
    assert lsd.signals == 2 and lsd.frames < sum((r.size - 512) // 128 + 1 for r in refs)
    # A [B, C, T] batch with 2 channels: every channel is one signal.
    batch_ref = torch.tensor(np.stack([refs[0][:7000], refs[1][:7000]]))[None]
    batch_rec = torch.tensor(np.stack([recs[0][:7000], recs[1][:7000]]))[None]
    expected = slow_lsd([refs[0][:7000], refs[1][:7000]], [recs[0][:7000], recs[1][:7000]], SR, bands)
    np.testing.assert_allclose(spectral.band_lsd(batch_ref, batch_rec, SR).values, expected, rtol=1e-9)
    # Other bands, another STFT size.
    custom = [(0, 500), (500, 4000)]
    np.testing.assert_allclose(
        spectral.band_lsd([torch.tensor(r) for r in refs], [torch.tensor(r) for r in recs], SR, bands=custom,
                          n_fft=256, hop_length=64).values,
        slow_lsd(refs, recs, SR, custom, n_fft=256, hop=64), rtol=1e-9)


def test_identical_signals_read_perfect():
    x = as_batch(music_like(1.0))
    assert spectral.band_lsd(x, x, SR).values == pytest.approx([0.0] * 4, abs=1e-9)
    assert min(spectral.band_snr(x, x, SR).values) > 100


def test_lowpass_is_worse_in_the_high_bands_only():
    rng = np.random.default_rng(0)
    refs = [music_like(2.0, seed=s) for s in range(3)]
    # The "codec": the reference plus noise 40 dB down; the low-passed codec: the same, above 1.1 kHz removed.
    codec = [r + 0.005 * rng.standard_normal(r.size) for r in refs]
    dull = [lowpass(c, 1100) for c in codec]
    ref, codec, dull = as_batch(*refs), as_batch(*codec), as_batch(*dull)
    lsd_codec, lsd_dull = spectral.band_lsd(ref, codec, SR).values, spectral.band_lsd(ref, dull, SR).values
    snr_codec, snr_dull = spectral.band_snr(ref, codec, SR).values, spectral.band_snr(ref, dull, SR).values
    # 1-2 kHz and 2-4 kHz: much worse (the 1-2 kHz band is cut above its first bins).
    for band in (2, 3):
        assert lsd_dull[band] > lsd_codec[band] + 20
        assert snr_dull[band] < snr_codec[band] - 20
    # Bass and low mids: not worse.
    for band in (0, 1):
        assert lsd_dull[band] <= lsd_codec[band] + 0.5
        assert snr_dull[band] >= snr_codec[band] - 0.5


def test_a_frame_rate_buzz_and_a_comb_filter_show_a_comb():
    frame_rate, hop = 100, SR // 100
    refs = [music_like(4.0, seed=s) for s in range(2)]
    rng = np.random.default_rng(1)
    clean = [r + 0.002 * rng.standard_normal(r.size) for r in refs]
    # Buzz: a click every frame (hop samples), 6 dB below the music.
    clicks = np.zeros(refs[0].size)
    clicks[::hop] = 1.0
    clicks = np.convolve(clicks, np.hanning(5), mode="same")
    clicks *= 0.5 * np.std(refs[0]) / np.std(clicks)
    buzzed = [c + clicks for c in clean]
    # A feed-forward comb filter with a one-frame delay: peaks at multiples of the frame rate.
    combed = [c + 0.5 * np.concatenate([np.zeros(hop), c[:-hop]]) for c in clean]
    ref = as_batch(*refs)
    plain = spectral.frame_rate_comb(ref, as_batch(*clean), SR, frame_rate)
    assert abs(plain.reference_db) < 1.0 and abs(plain.reconstruction_db) < 1.0
    assert plain.resolution == pytest.approx(5.0) and plain.multiples == len(range(6, 39))
    buzz = spectral.frame_rate_comb(ref, as_batch(*buzzed), SR, frame_rate)
    assert buzz.reconstruction_db > 5.0 and buzz.reference_db == pytest.approx(plain.reference_db)
    comb = spectral.frame_rate_comb(ref, as_batch(*combed), SR, frame_rate)
    assert comb.reconstruction_db > 5.0
    # Against a per-frame loop of the averaged spectrum.
    n_fft = SR // 5
    slow = np.mean([np.abs(f) ** 2 for b in buzzed for f in slow_frames(b, n_fft, n_fft // 2)], axis=0)
    fast = spectral.average_power_spectrum(as_batch(*buzzed), SR, 5.0).numpy()
    np.testing.assert_allclose(fast, slow, rtol=1e-4)
    db = 10 * np.log10(slow)
    multiples, halfway = range(600, 3801, 100), range(650, 3800, 100)
    expected = np.mean([db[f // 5] for f in multiples]) - np.mean([db[f // 5] for f in halfway])
    assert buzz.reconstruction_db == pytest.approx(expected, abs=1e-3)


def test_mismatched_inputs_are_refused():
    x = as_batch(music_like(1.0))
    with pytest.raises(ValueError, match="shape"):
        spectral.band_lsd(x, x[..., :-1], SR)
    with pytest.raises(ValueError, match="shorter"):
        spectral.band_lsd(x[..., :100], x[..., :100], SR)
    with pytest.raises(ValueError, match="resolution"):
        spectral.frame_rate_comb(x, x, SR, 100, resolution=40)


def test_find_lag_and_shift():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4000))
    delayed = np.concatenate([np.zeros((1, 37)), x], axis=1)  # trails by 37 samples
    lag, corr = opus.find_lag(x, delayed, 100)
    assert lag == 37 and corr == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(opus.shift(delayed, lag, 4000), x)
    lead = x[:, 12:]  # leads by 12 samples
    lag, _ = opus.find_lag(x, lead, 100)
    assert lag == -12
    np.testing.assert_allclose(opus.shift(lead, lag, 4000)[:, 12:], x[:, 12:])


@pytest.fixture(scope="module")
def ffmpeg():
    try:
        return opus.ffmpeg_binary()
    except opus.OpusUnavailable as error:
        unavailable(f"no Opus round trip here: {error}")


def test_opus_round_trip_is_aligned_and_measures_its_bitrate(ffmpeg):
    x = torch.tensor(music_like(3.0, seed=5)).float()
    result = opus.opus_roundtrip(x, SR, 16.0)
    assert result.audio.shape == (1, x.numel())
    # ffmpeg drops the pre-skip; at 8 kHz and low rates (SILK) one sample of delay is left
    # (libopus 1.x through ffmpeg 7), which the cross-correlation finds and removes.
    assert result.lag in (0, 1)
    # Aligned: a wide cross-correlation search on the output peaks at lag 0.
    lag, corr = opus.find_lag(x[None].double().numpy(), result.audio.double().numpy(), 400)
    assert lag == 0 and corr > 0.6
    assert result.correlation == pytest.approx(corr, rel=1e-4)
    high = opus.opus_roundtrip(x, SR, 32.0)  # CELT at this rate: ffmpeg's own alignment is exact
    assert high.lag == 0 and high.correlation > 0.99
    # Bitrates: the packets alone are below the file, and near the nominal rate (VBR).
    assert 0.5 * 16 < result.payload_kbps < result.file_kbps < 1.5 * 16
    # Higher bitrate, better waveform.
    low = opus.opus_roundtrip(x, SR, 6.0)
    assert low.payload_kbps < result.payload_kbps
    snr = spectral.band_snr(x[None, None], high.audio[None], SR).values
    assert min(snr) > 10.0


def test_ogg_packets(ffmpeg):
    x = torch.tensor(music_like(1.0, seed=6)).float()
    import subprocess
    raw = x.numpy().astype("<f4").tobytes()
    ogg = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "f32le", "-ar", str(SR), "-ac", "1",
                          "-i", "pipe:0", "-c:a", "libopus", "-b:a", "12000", "-f", "ogg", "pipe:1"],
                         input=raw, capture_output=True, check=True).stdout
    sizes = opus.ogg_packet_sizes(ogg)
    assert ogg[28:36] == b"OpusHead" and sizes[0] == 19  # the first page's packet: OpusHead, 19 bytes
    # 20 ms packets over 1 s (plus the encoder's look-ahead flush).
    assert 50 <= len(sizes) - 2 <= 52
    assert opus.opus_payload_bytes(ogg) == sum(sizes[2:]) < len(ogg)


def test_opus_refuses_rates_it_does_not_take():
    with pytest.raises(ValueError, match="Opus takes"):
        opus.opus_roundtrip(torch.zeros(1000), 11025, 6.0)
