"""Checks the PyTorch port of musicnn (``audiocraft_mmd.metrics.musicnn``) against the original.

Two halves, run in two environments:

1. ``--write-golden tests/data/musicnn_golden.npz`` in a throwaway environment holding the ORIGINAL
   (TensorFlow 2.15.1, ``pip install --no-deps musicnn==0.1.0``, librosa, soundfile; no torch needed)::

       python3.11 -m venv /work/venvs/tf
       /work/venvs/tf/bin/pip install tensorflow-cpu==2.15.1 librosa==0.10.2 soundfile
       /work/venvs/tf/bin/pip install --no-deps musicnn==0.1.0
       /work/venvs/tf/bin/python scripts/check_musicnn_port.py --write-golden tests/data/musicnn_golden.npz

   It writes the deterministic test signals below as 16 kHz WAV files, runs
   ``musicnn.extractor.extractor`` on each (MSD_musicnn and MTT_musicnn, 3 s patches) and stores its
   outputs: tag probabilities, the 200-d penultimate features and the mean-pooled mid-end features
   of every patch (with ``musicnn.configuration.BATCH_SIZE`` raised so that all patches go through
   one call: with its default of 1, musicnn 0.1.0 repeats the first patch's penultimate features
   for every later patch, a bug of its extractor loop; tag probabilities are unaffected).
2. ``--compare tests/data/musicnn_golden.npz`` in the project environment (no TensorFlow): the port
   on the same signals, max absolute and relative errors per output. ``tests/test_musicnn.py`` runs
   the same comparison in CI.

The signals are generated with numpy's legacy ``RandomState`` (a stream frozen by numpy's policy)
and float64 sines, so both environments produce them bit for bit.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import tempfile
import typing as tp

import numpy as np

SAMPLE_RATE = 16000
MODELS = ("MSD_musicnn", "MTT_musicnn")
OUTPUTS = ("taggram", "penultimate", "mean_pool")


def test_signals() -> dict:
    """Deterministic float32 signals at 16 kHz: harmonic notes, a chirp, noise bursts, and silence."""
    rate = SAMPLE_RATE
    t = np.arange(int(7.5 * rate)) / rate
    rng = np.random.RandomState(1234)
    signals = {}
    # A melody of harmonic notes with a decaying envelope, 0.25 s each.
    notes = 220.0 * 2 ** (rng.randint(0, 24, size=30) / 12)
    melody = np.zeros_like(t)
    for index, f0 in enumerate(notes):
        start = int(index * 0.25 * rate)
        local = t[start:start + int(0.25 * rate)] - t[start]
        envelope = np.exp(-6 * local)
        melody[start:start + local.size] += sum(envelope * np.sin(2 * np.pi * f0 * h * local) / h for h in range(1, 6))
    signals["melody"] = 0.3 * melody
    # A logarithmic chirp from 50 Hz to 7 kHz.
    phase = 2 * np.pi * 50 * 7.5 / np.log(140) * (140 ** (t / 7.5) - 1)
    signals["chirp"] = 0.5 * np.sin(phase)
    # Noise bursts every 0.5 s (a drum-like pulse) over a quiet bass line.
    pulses = (np.mod(t, 0.5) < 0.05) * rng.standard_normal(t.size)
    signals["drums"] = 0.4 * pulses + 0.2 * np.sin(2 * np.pi * 55 * t)
    signals["noise"] = 0.1 * rng.standard_normal(t.size)
    # Silence and near-silence exercise the log compression at its floor.
    signals["quiet"] = 1e-4 * rng.standard_normal(t.size)
    return {name: value.astype(np.float32) for name, value in signals.items()}


def load_signals(audio: tp.Optional[tp.Sequence[str]]) -> dict:
    """:func:`test_signals`, or the given 16 kHz mono audio files (float32) by file name."""
    if not audio:
        return test_signals()
    import soundfile as sf
    signals = {}
    for path in audio:
        data, rate = sf.read(path, dtype="float32")
        if rate != SAMPLE_RATE or data.ndim != 1:
            raise SystemExit(f"{path}: expected 16 kHz mono, got {rate} Hz, shape {data.shape}")
        signals[Path(path).stem] = data
    return signals


def write_golden(path: Path, audio: tp.Optional[tp.Sequence[str]] = None) -> None:
    import soundfile as sf
    import tensorflow as tf
    from musicnn import configuration
    from musicnn.extractor import extractor

    # musicnn 0.1.0's extractor runs one patch per session call and, for every patch after the
    # first, stores the FIRST patch's penultimate/cnn features again (it concatenates stale
    # variables). With every patch in the first call, each patch's own features come out.
    configuration.BATCH_SIZE = 1024

    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, signal in load_signals(audio).items():
            wav = Path(tmp) / f"{name}.wav"
            sf.write(wav, signal, SAMPLE_RATE, subtype="FLOAT")
            for model in MODELS:
                taggram, _, features = extractor(str(wav), model=model, input_length=3, extract_features=True)
                arrays[f"{model}/{name}/taggram"] = np.asarray(taggram, np.float32)
                arrays[f"{model}/{name}/penultimate"] = np.asarray(features["penultimate"], np.float32)
                arrays[f"{model}/{name}/mean_pool"] = np.asarray(features["mean_pool"], np.float32)
    import librosa
    import musicnn
    arrays["provenance"] = np.array(
        "musicnn.extractor.extractor(input_length=3, extract_features=True), configuration.BATCH_SIZE=1024, "
        f"of musicnn {getattr(musicnn, '__version__', '0.1.0')}, TensorFlow {tf.__version__}, "
        f"librosa {librosa.__version__}, numpy {np.__version__}, on "
        + (", ".join(audio) if audio else
           "scripts/check_musicnn_port.py:test_signals() written as 16 kHz float WAV"))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    print(f"wrote {path}: {len(arrays) - 1} arrays")


def compare(path: Path, audio: tp.Optional[tp.Sequence[str]] = None) -> dict:
    """Max absolute / relative error of the port per model and output, over every signal and patch."""
    import torch
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from audiocraft_mmd.metrics.musicnn import load_musicnn

    golden = np.load(path)
    errors = {}
    for model in MODELS:
        network = load_musicnn(model)
        for name, signal in load_signals(audio).items():
            with torch.no_grad():
                out = network.patch_outputs(torch.from_numpy(signal), SAMPLE_RATE)
            for output in OUTPUTS:
                expected = golden[f"{model}/{name}/{output}"]
                actual = out[output].numpy()
                if actual.shape != expected.shape:
                    raise AssertionError(f"{model}/{name}/{output}: shape {actual.shape} != original {expected.shape}")
                diff = np.abs(actual - expected)
                scale = np.abs(expected).max()
                key = f"{model}/{output}"
                abs_err, rel_err = errors.get(key, (0.0, 0.0))
                errors[key] = (max(abs_err, float(diff.max())), max(rel_err, float(diff.max() / max(scale, 1e-12))))
    return errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write-golden", type=Path, help="run the original musicnn (TensorFlow) and store its outputs")
    group.add_argument("--compare", type=Path, help="compare the port with stored outputs")
    parser.add_argument("--audio", nargs="+", help="16 kHz mono files to use instead of the generated signals "
                                                   "(give the same files to both halves)")
    args = parser.parse_args(argv)
    if args.write_golden:
        write_golden(args.write_golden, args.audio)
        return 0
    for key, (abs_err, rel_err) in compare(args.compare, args.audio).items():
        print(f"{key:28s} max abs error {abs_err:.3g}   max error / max |original| {rel_err:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
