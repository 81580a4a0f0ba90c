"""What the training-step benchmarks share: generated audio to train on, the wall-clock of a step,
and a step's metrics as plain floats for their JSON reports."""

from __future__ import annotations

from pathlib import Path
import time
import typing as tp

import numpy as np
import torch

SAMPLE_RATE = 32000


def write_audio(root: Path, clips: int = 4, seconds: float = 12.0) -> Path:
    """Generated harmonic tones at 32 kHz and their AudioCraft manifests, one folder per split."""
    import soundfile as sf
    from audiocraft.data.audio_dataset import find_audio_files, save_audio_meta

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    for split in ("train", "valid", "evaluate", "generate"):
        folder = root / "audio" / split
        folder.mkdir(parents=True)
        for index in range(clips):
            f0 = rng.uniform(80, 600)
            wave = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6)) + 0.05 * rng.standard_normal(t.size)
            sf.write(folder / f"{index}.wav", (0.3 * wave / np.abs(wave).max()).astype(np.float32), SAMPLE_RATE)
        save_audio_meta(root / "egs" / split / "data.jsonl",
                        find_audio_files(folder, minimal=True, progress=False, workers=0))
    return root / "egs"


def timed(step: tp.Callable[[], tp.Any]) -> float:
    # CUDA runs asynchronously: wait for the queued work on both sides, or the time is the launch's.
    synchronize = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    synchronize()
    begin = time.perf_counter()
    step()
    synchronize()
    return time.perf_counter() - begin


def scalars(metrics: dict) -> tp.Dict[str, float]:
    """A step's metrics as plain floats (tensors included), for the JSON report."""
    return {key: float(value.detach() if isinstance(value, torch.Tensor) else value) for key, value in metrics.items()
            if isinstance(value, (int, float, torch.Tensor))
            and (not isinstance(value, torch.Tensor) or value.numel() == 1)}
