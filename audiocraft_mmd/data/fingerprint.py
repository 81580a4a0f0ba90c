"""A coarse audio fingerprint, to find the same track decoded from two packages, folders or formats.

The fingerprint is the log energy of a few frequency bands, 10 times per second, on the mono mix
after conversion, with leading and trailing near-silence trimmed. It survives a change of codec
(Vorbis, Opus, MP3, lossless), of gain and of a short offset, and is small enough (8 bytes per
0.1 s) to be stored next to each converted track. Two fingerprints are the same audio when their
lengths agree and their band-energy fluctuations correlate (or, for steady sounds without
fluctuations, when their spectral profiles agree).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
import typing as tp

import numpy as np

FRAME_RATE = 10          # fingerprint frames per second
NUM_BANDS = 8
MIN_FREQ = 50.0          # Hz, lowest band edge
MAX_FREQ = 8000.0        # Hz, highest band edge (lossy codecs keep this range at any bitrate)
FLOOR_DB = -80.0         # energies are stored relative to the loudest frame, clamped here
TRIM_DB = -60.0          # leading / trailing frames quieter than this are trimmed
DB_STEP = 0.5            # quantisation step of the stored values

MAX_LAG = 10             # frames (1 s) of offset allowed between two copies
MIN_CORRELATION = 0.9    # of the band-energy fluctuations, for a duplicate
STEADY_STD_DB = 0.5      # below this fluctuation, compare spectral profiles instead
MAX_PROFILE_DB = 1.0     # ... which must then agree within this (after removing a gain)


@dataclass
class Fingerprint:
    """Band energies in dB (frames x bands, quantised), trimmed of silence at both ends."""
    bands: np.ndarray  # float32 [T, NUM_BANDS], values in [FLOOR_DB, 0]

    @property
    def duration(self) -> float:
        return self.bands.shape[0] / FRAME_RATE

    def encode(self) -> str:
        """Compact text form (base64 of one byte per value) for a JSON sidecar."""
        q = np.clip(np.round(-self.bands / DB_STEP), 0, 255).astype(np.uint8)
        return f"{q.shape[0]}:" + base64.b64encode(q.tobytes()).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> "Fingerprint":
        count, data = text.split(":", 1)
        q = np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(int(count), NUM_BANDS)
        return cls(-q.astype(np.float32) * DB_STEP)


def compute_fingerprint(mono: np.ndarray, sample_rate: int) -> Fingerprint:
    """Fingerprint of a mono float signal at `sample_rate`."""
    hop = max(1, int(round(sample_rate / FRAME_RATE)))
    win = 2 * hop
    n_fft = 1 << int(np.ceil(np.log2(win)))
    x = np.asarray(mono, dtype=np.float32)
    num_frames = max(1, int(np.ceil(x.size / hop)))
    x = np.pad(x, (hop // 2, num_frames * hop + win - x.size - hop // 2))
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:num_frames]
    window = np.hanning(win).astype(np.float32)
    power = np.empty((num_frames, n_fft // 2 + 1), dtype=np.float32)
    for start in range(0, num_frames, 2048):  # bounded memory for long tracks
        chunk = np.fft.rfft(frames[start:start + 2048] * window, n=n_fft, axis=-1)
        power[start:start + 2048] = chunk.real ** 2 + chunk.imag ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    top = min(MAX_FREQ, 0.45 * sample_rate)
    edges = np.geomspace(MIN_FREQ, top, NUM_BANDS + 1)
    bands = np.stack([power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1)
                      for lo, hi in zip(edges[:-1], edges[1:])], axis=1)
    db = 10 * np.log10(bands + 1e-20)
    db = np.clip(db - db.max(), FLOOR_DB, 0.0)
    total = 10 * np.log10(bands.sum(axis=1) + 1e-20)
    loud = np.nonzero(total >= total.max() + TRIM_DB)[0]
    if loud.size:
        db = db[loud[0]:loud[-1] + 1]
    return Fingerprint(db.astype(np.float32))


def _profile_distance(a: Fingerprint, b: Fingerprint) -> float:
    """Largest difference (dB) between the mean band profiles, after removing a global gain."""
    diff = a.bands.mean(axis=0) - b.bands.mean(axis=0)
    return float(np.abs(diff - diff.mean()).max())


def _best_lag(a: np.ndarray, b: np.ndarray) -> int:
    """Offset of b relative to a (in frames, |lag| <= MAX_LAG) maximising the envelope correlation."""
    ea, eb = a.mean(axis=1), b.mean(axis=1)
    best, best_score = 0, -np.inf
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        xa, xb = (ea[lag:], eb) if lag >= 0 else (ea, eb[-lag:])
        n = min(xa.size, xb.size)
        if n < 2:
            continue
        xa, xb = xa[:n] - xa[:n].mean(), xb[:n] - xb[:n].mean()
        score = float((xa * xb).sum() / (np.sqrt((xa ** 2).sum() * (xb ** 2).sum()) + 1e-9))
        if score > best_score:
            best, best_score = lag, score
    return best


def similarity(a: Fingerprint, b: Fingerprint) -> tp.Optional[float]:
    """A score in [0, 1] when `a` and `b` are the same audio, None when they are not."""
    na, nb = a.bands.shape[0], b.bands.shape[0]
    if abs(na - nb) > max(MAX_LAG, 0.02 * max(na, nb)):
        return None
    if _profile_distance(a, b) > 6.0:
        return None
    lag = _best_lag(a.bands, b.bands)
    xa, xb = (a.bands[lag:], b.bands) if lag >= 0 else (a.bands, b.bands[-lag:])
    n = min(xa.shape[0], xb.shape[0])
    if n < 0.9 * min(na, nb) or n < 2:
        return None
    xa = xa[:n] - xa[:n].mean(axis=0)
    xb = xb[:n] - xb[:n].mean(axis=0)
    std_a, std_b = float(xa.std()), float(xb.std())
    if std_a < STEADY_STD_DB and std_b < STEADY_STD_DB:
        distance = _profile_distance(a, b)
        return 1.0 - distance / MAX_PROFILE_DB if distance <= MAX_PROFILE_DB else None
    corr = float((xa * xb).sum() / (np.sqrt((xa ** 2).sum() * (xb ** 2).sum()) + 1e-9))
    return corr if corr >= MIN_CORRELATION else None


def find_duplicates(fingerprints: tp.Sequence[Fingerprint]) -> tp.List[tp.Tuple[int, int, float]]:
    """Duplicates among `fingerprints`, as (index, index_of_kept_copy, similarity) triples.

    The kept copy of each group of duplicates is its first member in the given order.
    """
    order = sorted(range(len(fingerprints)), key=lambda i: fingerprints[i].bands.shape[0])
    parent = list(range(len(fingerprints)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best: tp.Dict[tp.Tuple[int, int], float] = {}
    for pos, i in enumerate(order):
        len_i = fingerprints[i].bands.shape[0]
        for j in order[pos + 1:]:
            len_j = fingerprints[j].bands.shape[0]
            if len_j - len_i > max(MAX_LAG, 0.02 * len_j):
                break
            score = similarity(fingerprints[i], fingerprints[j])
            if score is not None:
                best[(min(i, j), max(i, j))] = score
                ri, rj = root(i), root(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    duplicates = []
    for index in range(len(fingerprints)):
        kept = root(index)
        if kept != index:
            score = best.get((kept, index))
            if score is None:  # linked through another member of the group
                score = max(s for (p, q), s in best.items() if index in (p, q))
            duplicates.append((index, kept, score))
    return duplicates
