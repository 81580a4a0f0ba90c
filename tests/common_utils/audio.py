"""Generated audio: music-like tones, and AudioCraft manifests over them (no network, no real data)."""

from pathlib import Path
import typing as tp

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


def write_tones(folder: Path, num_files: int, duration: float, seed: int,
                sample_rate: int = SAMPLE_RATE) -> tp.List[Path]:
    """Writes `num_files` mono WAVs of random harmonic tones with noise (music-like, not silent)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(duration * sample_rate)) / sample_rate
    paths = []
    for index in range(num_files):
        f0 = rng.uniform(110, 440)
        wave = sum(rng.uniform(0.1, 0.5) / h * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6.3))
                   for h in range(1, 6))
        wave = wave * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)) + 0.01 * rng.standard_normal(t.size)
        path = folder / f"tone_{index:02d}.wav"
        sf.write(path, (0.5 * wave / np.abs(wave).max()).astype(np.float32), sample_rate)
        paths.append(path)
    return paths


def write_egs(root: Path, sample_rate: int = SAMPLE_RATE) -> Path:
    """AudioCraft manifests `<root>/egs/{train,valid,evaluate,generate}/data.jsonl` over generated tones."""
    from audiocraft.data.audio_dataset import find_audio_files, save_audio_meta

    for seed, split in enumerate(["train", "valid", "evaluate", "generate"]):
        write_tones(root / "audio" / split, num_files=4 if split == "train" else 2, duration=6.0, seed=seed,
                    sample_rate=sample_rate)
        meta = find_audio_files(root / "audio" / split, minimal=True, progress=False, workers=0)
        save_audio_meta(root / "egs" / split / "data.jsonl", meta)
    return root / "egs"
