"""Shared fixtures: tiny generated audio datasets (no network, no real data)."""

import contextlib
from pathlib import Path
import typing as tp

import numpy as np
import pytest
import soundfile as sf

import audiocraft_mmd  # noqa: F401  (connects AudioCraft before any test imports it)

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


@pytest.fixture(scope="session")
def tiny_egs(tmp_path_factory) -> Path:
    """Tiny 16 kHz manifests (see :func:`write_egs`)."""
    return write_egs(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture
def make_tiny_solver(tiny_egs, tmp_path, monkeypatch):
    """Builds, in this process, the solver of a tiny `dora run solver=compression/mmd <overrides>`."""
    from audiocraft_mmd import train
    from test_dora_run import TINY_RUN, datasource

    monkeypatch.setattr(train.main.dora, "dir", tmp_path)
    with contextlib.ExitStack() as stack:  # each solver is used inside its XP, as under `dora run`

        def make(*overrides: str):
            xp = train.main.get_xp(["solver=compression/mmd", *TINY_RUN, *datasource(tiny_egs), *overrides])
            stack.enter_context(xp.enter())
            return train.get_solver(xp.cfg)

        yield make


@pytest.fixture
def tiny_solver(make_tiny_solver):
    """The MMD compression solver of a tiny `dora run solver=compression/mmd`, built in this process."""
    return make_tiny_solver()


@pytest.fixture(scope="session")
def dora_dir(tmp_path_factory) -> Path:
    """The Dora folder shared by the MusicGen tests (their codec and LM XPs)."""
    return tmp_path_factory.mktemp("dora_musicgen")


@pytest.fixture(scope="session")
def codec_sig(tiny_egs, dora_dir) -> str:
    """A tiny compression XP trained with the loss aligned as the delay pattern (mmd.alignment=delay),
    trained once for every MusicGen test module."""
    from test_dora_run import datasource
    from test_musicgen import TINY_CODEC
    run, xp_folder = run_new_xp(["run", *TINY_CODEC, *datasource(tiny_egs)], dora_dir)
    assert run.returncode == 0, run.stderr[-6000:]
    return xp_folder.name


def run_new_xp(args: tp.List[str], dora_dir: Path):
    """``dora ARGS`` in ``dora_dir``; returns the run and the XP folder it created (None if none)."""
    from test_dora_run import dora
    xps = dora_dir / "xps"
    before = set(xps.iterdir()) if xps.exists() else set()
    run = dora(args, dora_dir)
    created = sorted(set(xps.iterdir()) - before) if xps.exists() else []
    assert len(created) <= 1, created
    return run, (created[0] if created else None)
