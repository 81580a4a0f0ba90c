"""What the training-step benchmarks share: their common arguments, generated audio to train on in a
temporary folder, the wall-clock of a step, and a step's metrics as plain floats for their JSON reports."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
import tempfile
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


def add_run_arguments(parser: argparse.ArgumentParser, example_override: str) -> None:
    """``--threads``, ``--json`` and the extra Hydra overrides, as every step benchmark takes them."""
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("overrides", nargs="*", help=f"extra Hydra overrides, e.g. {example_override}")


@contextlib.contextmanager
def benchmark_data(threads: tp.Optional[int]) -> tp.Iterator[Path]:
    """Sets torch's threads (if given) and seed; yields the manifests of :func:`write_audio` in a temporary
    folder, whose ``dora`` subfolder is free for the solver's XP."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        yield write_audio(Path(tmp))


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
